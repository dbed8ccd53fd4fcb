"""user_identities is the only home of people's channel ids: drop users.wecom_userid / users.dingtalk_staff_id

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 14:00:00

Migration 0005 copied both columns into user_identities and the importer writes identities since; the upgrade
copies once more whatever a column holds that user_identities lacks (an id written by an older process after 0005),
then drops the columns. The downgrade restores them from user_identities (channels 'wecom' and 'dingtalk').

SQLite cannot drop or add a UNIQUE column in place: the batch recreates ``users`` (copy, drop, rename). With foreign
keys on, dropping the old table deletes its rows first, which cascades to user_identities and would trip the
references from visits and support_requests; so the identities are kept aside and put back, and foreign-key checks
are deferred to the commit (the recreated table has every id again by then).
"""
from typing import Callable, Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0006'
down_revision: Union[str, Sequence[str], None] = '0005'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

COLUMNS = (('wecom', 'wecom_userid'), ('dingtalk', 'dingtalk_staff_id'))
IDENTITY_COLUMNS = 'id, user_id, channel, external_id, created_at'


def _recreating_users(alter: Callable[[], None]) -> None:
    """Run ``alter`` (a batch on ``users``) without losing user_identities on SQLite."""
    conn = op.get_bind()
    sqlite = conn.dialect.name == 'sqlite'
    if sqlite:
        conn.execute(sa.text('PRAGMA defer_foreign_keys = ON'))
        conn.execute(sa.text(f'CREATE TEMP TABLE identities_0006 AS SELECT {IDENTITY_COLUMNS} FROM user_identities'))
    alter()
    if sqlite:
        conn.execute(sa.text('DELETE FROM user_identities'))
        conn.execute(sa.text(
            f'INSERT INTO user_identities ({IDENTITY_COLUMNS}) SELECT {IDENTITY_COLUMNS} FROM identities_0006'
        ))
        conn.execute(sa.text('DROP TABLE identities_0006'))


def upgrade() -> None:
    conn = op.get_bind()
    for channel, column in COLUMNS:
        conn.execute(sa.text(
            f"INSERT INTO user_identities (user_id, channel, external_id, created_at) "
            f"SELECT u.id, '{channel}', u.{column}, u.created_at FROM users u "
            f"WHERE u.{column} IS NOT NULL AND u.{column} <> '' "
            f"AND NOT EXISTS (SELECT 1 FROM user_identities i WHERE i.user_id = u.id AND i.channel = '{channel}') "
            f"AND NOT EXISTS (SELECT 1 FROM user_identities i WHERE i.channel = '{channel}' "
            f"AND i.external_id = u.{column})"
        ))

    def alter() -> None:
        with op.batch_alter_table('users', schema=None) as batch_op:
            batch_op.drop_constraint('uq_users_dingtalk_staff_id', type_='unique')
            batch_op.drop_constraint('uq_users_wecom_userid', type_='unique')
            batch_op.drop_column('dingtalk_staff_id')
            batch_op.drop_column('wecom_userid')

    _recreating_users(alter)


def downgrade() -> None:
    def alter() -> None:
        with op.batch_alter_table('users', schema=None) as batch_op:
            batch_op.add_column(sa.Column('wecom_userid', sa.String(length=64), nullable=True))
            batch_op.add_column(sa.Column('dingtalk_staff_id', sa.String(length=64), nullable=True))
            batch_op.create_unique_constraint('uq_users_wecom_userid', ['wecom_userid'])
            batch_op.create_unique_constraint('uq_users_dingtalk_staff_id', ['dingtalk_staff_id'])

    _recreating_users(alter)
    conn = op.get_bind()
    for channel, column in COLUMNS:
        conn.execute(sa.text(
            f"UPDATE users SET {column} = (SELECT i.external_id FROM user_identities i "
            f"WHERE i.user_id = users.id AND i.channel = '{channel}')"
        ))
