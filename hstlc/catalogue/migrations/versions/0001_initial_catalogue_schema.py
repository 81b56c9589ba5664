"""initial catalogue schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('bad_data',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('ingest_date', sa.Date(), nullable=False),
    sa.Column('reason', sa.Enum('Bad EXPFLAG', 'Non-linear time', 'No events', 'Singular event', 'Bad Proposal', 'Short Exposure', 'Unreadable file', 'Unsupported product', 'Missing keyword', name='bad_data_reason', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('path', sa.String(length=1024), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bad_data'))
    )
    op.create_index(op.f('ix_bad_data_filename'), 'bad_data', ['filename'], unique=True)
    op.create_index(op.f('ix_bad_data_sha256'), 'bad_data', ['sha256'], unique=False)

    op.create_table('metadata',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('path', sa.String(length=1024), nullable=False),
    sa.Column('ingest_date', sa.Date(), nullable=False),
    sa.Column('telescop', sa.String(length=10), nullable=False),
    sa.Column('instrume', sa.String(length=10), nullable=False),
    sa.Column('targname', sa.String(length=64), nullable=False),
    sa.Column('cal_ver', sa.String(length=30), nullable=True),
    sa.Column('obstype', sa.String(length=30), nullable=False),
    sa.Column('cenwave', sa.Integer(), nullable=False),
    sa.Column('aperture', sa.String(length=30), nullable=False),
    sa.Column('detector', sa.String(length=30), nullable=False),
    sa.Column('opt_elem', sa.String(length=30), nullable=False),
    sa.Column('fppos', sa.Integer(), nullable=True),
    sa.Column('rootname', sa.String(length=32), nullable=False),
    sa.Column('proposid', sa.Integer(), nullable=True),
    sa.Column('expstart', sa.Float(precision=53), nullable=True),
    sa.Column('exptime', sa.Float(precision=53), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_metadata'))
    )
    op.create_index(op.f('ix_metadata_filename'), 'metadata', ['filename'], unique=True)
    op.create_index(op.f('ix_metadata_rootname'), 'metadata', ['rootname'], unique=False)
    op.create_index(op.f('ix_metadata_sha256'), 'metadata', ['sha256'], unique=False)
    op.create_index(op.f('ix_metadata_targname'), 'metadata', ['targname'], unique=False)

    op.create_table('stats',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lightcurve_path', sa.String(length=1024), nullable=False),
    sa.Column('lightcurve_filename', sa.String(length=255), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('mean', sa.Float(precision=53), nullable=True),
    sa.Column('mu', sa.Float(precision=53), nullable=True),
    sa.Column('stdev', sa.Float(precision=53), nullable=True),
    sa.Column('poisson_factor', sa.Float(precision=53), nullable=True),
    sa.Column('pearson_r', sa.Float(precision=53), nullable=True),
    sa.Column('pearson_p', sa.Float(precision=53), nullable=True),
    sa.Column('periodogram', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('deliver', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.CheckConstraint('stdev IS NULL OR stdev >= 0', name=op.f('ck_stats_stdev_not_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stats')),
    sa.UniqueConstraint('lightcurve_path', 'lightcurve_filename', name=op.f('uq_stats_lightcurve_path_lightcurve_filename'))
    )
    op.create_table('outputs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('metadata_id', sa.Integer(), nullable=False),
    sa.Column('individual_path', sa.String(length=1024), nullable=True),
    sa.Column('individual_filename', sa.String(length=255), nullable=True),
    sa.Column('composite_path', sa.String(length=1024), nullable=True),
    sa.Column('composite_filename', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.ForeignKeyConstraint(['metadata_id'], ['metadata.id'], name=op.f('fk_outputs_metadata_id_metadata'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outputs')),
    sa.UniqueConstraint('metadata_id', name=op.f('uq_outputs_metadata_id'))
    )


def downgrade() -> None:
    op.drop_table('outputs')
    op.drop_table('stats')
    op.drop_index(op.f('ix_metadata_targname'), table_name='metadata')
    op.drop_index(op.f('ix_metadata_sha256'), table_name='metadata')
    op.drop_index(op.f('ix_metadata_rootname'), table_name='metadata')
    op.drop_index(op.f('ix_metadata_filename'), table_name='metadata')

    op.drop_table('metadata')
    op.drop_index(op.f('ix_bad_data_sha256'), table_name='bad_data')
    op.drop_index(op.f('ix_bad_data_filename'), table_name='bad_data')

    op.drop_table('bad_data')
