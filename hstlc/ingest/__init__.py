"""Taking new files into the catalogue.

* :mod:`~hstlc.ingest.dataset`: a dataset's files, its state through the steps, the settings.
* :mod:`~hstlc.ingest.plan`: discovery, and what the catalogue already holds (idempotency).
* :mod:`~hstlc.ingest.steps`: the per-dataset steps and how they are run.
* :mod:`~hstlc.ingest.groups`: composite lightcurves of catalogue groups.
"""
