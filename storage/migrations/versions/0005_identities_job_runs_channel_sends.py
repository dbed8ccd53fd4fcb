"""user identities per channel, job runs (once per period), a per-channel throttle ledger

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 13:20:00

The per-platform columns users.wecom_userid / users.dingtalk_staff_id are copied into user_identities and kept
for now (the org CSV keeps its columns); wecom_sends becomes channel_sends with channel = 'wecom'.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0005'
down_revision: Union[str, Sequence[str], None] = '0004'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('user_identities',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('external_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_identities_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_identities')),
    sa.UniqueConstraint('channel', 'external_id', name='uq_user_identities_channel_external_id'),
    sa.UniqueConstraint('user_id', 'channel', name='uq_user_identities_user_id_channel')
    )
    op.create_table('job_runs',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('job', sa.String(length=64), nullable=False),
    sa.Column('period', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('owner', sa.String(length=96), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job_runs')),
    sa.UniqueConstraint('job', 'period', name='uq_job_runs_job_period')
    )
    op.create_table('channel_sends',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('recipient', sa.String(length=64), nullable=False),
    sa.Column('outbox_id', BigId, nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_channel_sends'))
    )
    with op.batch_alter_table('channel_sends', schema=None) as batch_op:
        batch_op.create_index('ix_channel_sends_recipient_at', ['channel', 'recipient', 'sent_at'], unique=False)

    conn = op.get_bind()
    for channel, column in (('wecom', 'wecom_userid'), ('dingtalk', 'dingtalk_staff_id')):
        conn.execute(sa.text(
            f"INSERT INTO user_identities (user_id, channel, external_id, created_at) "
            f"SELECT id, :channel, {column}, created_at FROM users WHERE {column} IS NOT NULL AND {column} <> ''"
        ), {"channel": channel})
    conn.execute(sa.text(
        "INSERT INTO channel_sends (channel, recipient, outbox_id, sent_at) "
        "SELECT 'wecom', recipient, outbox_id, sent_at FROM wecom_sends"
    ))
    with op.batch_alter_table('wecom_sends', schema=None) as batch_op:
        batch_op.drop_index('ix_wecom_sends_recipient_at')
    op.drop_table('wecom_sends')


def downgrade() -> None:
    op.create_table('wecom_sends',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('recipient', sa.String(length=64), nullable=False),
    sa.Column('outbox_id', BigId, nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_wecom_sends'))
    )
    with op.batch_alter_table('wecom_sends', schema=None) as batch_op:
        batch_op.create_index('ix_wecom_sends_recipient_at', ['recipient', 'sent_at'], unique=False)
    op.get_bind().execute(sa.text(
        "INSERT INTO wecom_sends (recipient, outbox_id, sent_at) "
        "SELECT recipient, outbox_id, sent_at FROM channel_sends WHERE channel = 'wecom'"
    ))
    with op.batch_alter_table('channel_sends', schema=None) as batch_op:
        batch_op.drop_index('ix_channel_sends_recipient_at')
    op.drop_table('channel_sends')
    op.drop_table('job_runs')
    op.drop_table('user_identities')
