"""download: the history of the MAST downloads, one row per file and run

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

STATUSES = ('fetched', 'present', 'failed')


def upgrade() -> None:
    op.create_table('download',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run', sa.String(length=32), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('rootname', sa.String(length=32), nullable=False),
    sa.Column('uri', sa.String(length=1024), nullable=False),
    sa.Column('status', sa.Enum(*STATUSES, name='download_status', native_enum=False,
                                create_constraint=True, length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('http_status', sa.Integer(), nullable=True),
    sa.Column('size', sa.BigInteger(), nullable=True),
    sa.Column('expected_size', sa.BigInteger(), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('expected_checksum', sa.String(length=80), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('seconds', sa.Float(precision=53), nullable=False),
    sa.Column('path', sa.String(length=1024), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_download')),
    sa.UniqueConstraint('run', 'filename', name=op.f('uq_download_run_filename'))
    )
    op.create_index(op.f('ix_download_filename'), 'download', ['filename'], unique=False)
    op.create_index(op.f('ix_download_rootname'), 'download', ['rootname'], unique=False)
    op.create_index(op.f('ix_download_run'), 'download', ['run'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_download_run'), table_name='download')
    op.drop_index(op.f('ix_download_rootname'), table_name='download')
    op.drop_index(op.f('ix_download_filename'), table_name='download')
    op.drop_table('download')
