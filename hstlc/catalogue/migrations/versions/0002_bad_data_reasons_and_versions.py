"""bad_data: the newer refusal reasons; one row per refused name and content

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

OLD_REASONS = ('Bad EXPFLAG', 'Non-linear time', 'No events', 'Singular event', 'Bad Proposal',
               'Short Exposure', 'Unreadable file', 'Unsupported product', 'Missing keyword')
NEW_REASONS = OLD_REASONS + ('Corrupt events', 'Name mismatch', 'Symbolic link',
                             'Time span too long', 'No source events')


def _reason_type(reasons: tuple[str, ...]) -> sa.Enum:
    return sa.Enum(*reasons, name='bad_data_reason', native_enum=False, create_constraint=True,
                   length=32)


def _check(reasons: tuple[str, ...]) -> str:
    return "reason IN ({})".format(", ".join(f"'{reason}'" for reason in reasons))


def _change(reasons: tuple[str, ...], *, unique_name: bool) -> None:
    """Give ``bad_data`` the CHECK of ``reasons`` and its name key (alone, or with sha256)."""
    with op.batch_alter_table('bad_data', recreate='auto') as batch_op:
        batch_op.drop_constraint(op.f('ck_bad_data_bad_data_reason'), type_='check')
        batch_op.create_check_constraint('bad_data_reason', _check(reasons))
        batch_op.drop_index(op.f('ix_bad_data_filename'))
        if unique_name:
            batch_op.drop_constraint(op.f('uq_bad_data_filename_sha256'), type_='unique')
        batch_op.create_index(op.f('ix_bad_data_filename'), ['filename'], unique=unique_name)
        if not unique_name:
            batch_op.create_unique_constraint(op.f('uq_bad_data_filename_sha256'),
                                              ['filename', 'sha256'])


def upgrade() -> None:
    _change(NEW_REASONS, unique_name=False)


def downgrade() -> None:
    # Rows of the newer reasons, and all but the newest row of each name, cannot be kept.
    op.execute(sa.text("DELETE FROM bad_data WHERE reason NOT IN ({})".format(
        ", ".join(f"'{reason}'" for reason in OLD_REASONS))))
    op.execute(sa.text("DELETE FROM bad_data WHERE id NOT IN "
                       "(SELECT max(id) FROM bad_data GROUP BY filename)"))
    _change(OLD_REASONS, unique_name=True)
