"""console sessions, unguessable console media tokens, imported calendar days, outbox lease owners

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 07:40:00

"""
import secrets
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0004'
down_revision: Union[str, Sequence[str], None] = '0003'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('console_sessions',
    sa.Column('id_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('user_agent', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('id_hash', name=op.f('pk_console_sessions'))
    )
    with op.batch_alter_table('console_sessions', schema=None) as batch_op:
        batch_op.create_index('ix_console_sessions_user', ['user_id', 'revoked_at'], unique=False)

    op.create_table('calendar_days',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.Column('imported_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('day', name=op.f('pk_calendar_days'))
    )
    with op.batch_alter_table('calendar_days', schema=None) as batch_op:
        batch_op.create_index('ix_calendar_days_year', ['year'], unique=False)

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('console_tokens_after', sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_by', sa.String(length=96), nullable=True))

    # Existing uploads get a random token; their old numeric URLs stop working (they were guessable).
    with op.batch_alter_table('console_media', schema=None) as batch_op:
        batch_op.add_column(sa.Column('token', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('card_id', BigId, nullable=True))
    conn = op.get_bind()
    media = sa.table('console_media', sa.column('id', BigId), sa.column('token', sa.String(64)))
    for (row_id,) in conn.execute(sa.select(media.c.id)).all():
        conn.execute(media.update().where(media.c.id == row_id).values(token=secrets.token_urlsafe(24)))
    with op.batch_alter_table('console_media', schema=None) as batch_op:
        batch_op.alter_column('token', existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(op.f('uq_console_media_token'), ['token'])
        batch_op.create_index(batch_op.f('ix_console_media_card_id'), ['card_id'], unique=False)
        batch_op.create_index('ix_console_media_user_at', ['user_id', 'created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('console_media', schema=None) as batch_op:
        batch_op.drop_index('ix_console_media_user_at')
        batch_op.drop_index(batch_op.f('ix_console_media_card_id'))
        batch_op.drop_constraint(op.f('uq_console_media_token'), type_='unique')
        batch_op.drop_column('card_id')
        batch_op.drop_column('token')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('claimed_by')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('console_tokens_after')
    with op.batch_alter_table('calendar_days', schema=None) as batch_op:
        batch_op.drop_index('ix_calendar_days_year')
    op.drop_table('calendar_days')
    with op.batch_alter_table('console_sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_console_sessions_user')
    op.drop_table('console_sessions')
