"""stats: the period search, flares, excess variance, chi-square, reason and file hash

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

KINDS = ('individual', 'composite')
FLOATS = ('period_short', 'power_short', 'fap_short', 'period_medium', 'power_medium',
          'fap_medium', 'period_long', 'power_long', 'fap_long', 'fap', 'flare_peak_ratio',
          'flare_start_mjd', 'excess_variance', 'excess_variance_error', 'chi2_dof')


def upgrade() -> None:
    with op.batch_alter_table('stats', recreate='auto') as batch_op:
        # counts are background-subtracted and EPSILON-weighted: their sum is not whole
        batch_op.alter_column('total', existing_type=sa.Integer(), type_=sa.Float(precision=53),
                              nullable=True)
        batch_op.add_column(sa.Column('kind', sa.Enum(*KINDS, name='stats_kind', native_enum=False,
                                                      create_constraint=True, length=16),
                                      nullable=True))
        batch_op.add_column(sa.Column('targname', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('sha256', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('n_bins', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('n_visits', sa.Integer(), nullable=True))
        for name in FLOATS[:10]:
            batch_op.add_column(sa.Column(name, sa.Float(precision=53), nullable=True))
        batch_op.add_column(sa.Column('periodic', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))
        batch_op.add_column(sa.Column('n_flares', sa.Integer(), nullable=True))
        for name in FLOATS[10:]:
            batch_op.add_column(sa.Column(name, sa.Float(precision=53), nullable=True))
        batch_op.add_column(sa.Column('reason', sa.String(length=255), nullable=True))
        batch_op.create_index(batch_op.f('ix_stats_targname'), ['targname'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('stats', recreate='auto') as batch_op:
        batch_op.drop_index(batch_op.f('ix_stats_targname'))
        batch_op.drop_constraint(batch_op.f('ck_stats_stats_kind'), type_='check')
        for name in ('kind', 'targname', 'sha256', 'n_bins', 'n_visits', *FLOATS, 'periodic',
                     'n_flares', 'reason'):
            batch_op.drop_column(name)
        batch_op.alter_column('total', existing_type=sa.Float(precision=53), type_=sa.Integer(),
                              nullable=False)
