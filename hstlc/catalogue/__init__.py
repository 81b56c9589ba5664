"""The hstlc catalogue database (SQLAlchemy 2.0 models, engine, stores, migrations)."""

from hstlc.catalogue.engine import create_catalogue_engine, session_scope
from hstlc.catalogue.models import BadData, Base, Metadata, Outputs, Stats

__all__ = [
    "BadData",
    "Base",
    "Metadata",
    "Outputs",
    "Stats",
    "create_catalogue_engine",
    "session_scope",
]
