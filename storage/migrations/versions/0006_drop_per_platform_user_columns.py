"""user_identities is the only home of people's channel ids: drop users.wecom_userid / users.dingtalk_staff_id

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 14:00:00

Migration 0005 copied both columns into user_identities and the importer writes identities since; the upgrade
copies once more whatever a column holds that user_identities lacks (an id written by an older process after 0005),
then drops the columns. The downgrade restores them from user_identities (channels 'wecom' and 'dingtalk').

SQLite cannot drop or add a UNIQUE column in place: the batch rebuilds ``users`` (copy, drop, rename). With foreign
keys on, dropping the old table would delete its rows first, cascading to user_identities and tripping the
references from visits and support_requests. ``PRAGMA foreign_keys`` changes only outside a transaction, so the
transaction the earlier steps of this upgrade opened is committed first (the database is then at the previous
revision, as alembic_version says), the rebuild runs with foreign keys off, ``PRAGMA foreign_key_check`` must find
nothing, and foreign keys are back on before the revision is recorded. A crash in between leaves the columns gone
and the revision at 0005: the upgrade then skips the rebuild.
"""
from typing import Callable, Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0006'
down_revision: Union[str, Sequence[str], None] = '0005'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

COLUMNS = (('wecom', 'wecom_userid'), ('dingtalk', 'dingtalk_staff_id'))


def _set_foreign_keys(conn: sa.engine.Connection, on: bool) -> None:
    """SQLite: switch foreign-key enforcement, ending the open transaction if there is one (the pragma is a no-op
    inside a transaction)."""
    value = 'ON' if on else 'OFF'
    conn.exec_driver_sql(f'PRAGMA foreign_keys = {value}')
    if bool(conn.exec_driver_sql('PRAGMA foreign_keys').scalar()) != on:
        conn.exec_driver_sql('COMMIT')
        conn.exec_driver_sql(f'PRAGMA foreign_keys = {value}')


def _rebuilding_users(alter: Callable[[], None]) -> None:
    """Run ``alter`` (a batch on ``users``); on SQLite with foreign keys off for the table rebuild."""
    conn = op.get_bind()
    if conn.dialect.name != 'sqlite':
        alter()
        return
    _set_foreign_keys(conn, False)
    try:
        alter()
        problems = conn.exec_driver_sql('PRAGMA foreign_key_check').all()
        if problems:
            raise RuntimeError(f'foreign keys broken by rebuilding users: {problems[:5]}')
    finally:
        _set_foreign_keys(conn, True)


def _columns() -> set[str]:
    return {c['name'] for c in sa.inspect(op.get_bind()).get_columns('users')}


def upgrade() -> None:
    if not {column for _, column in COLUMNS} <= _columns():
        return  # dropped already, by a run that crashed before recording the revision (SQLite)
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

    _rebuilding_users(alter)


def downgrade() -> None:
    def alter() -> None:
        with op.batch_alter_table('users', schema=None) as batch_op:
            batch_op.add_column(sa.Column('wecom_userid', sa.String(length=64), nullable=True))
            batch_op.add_column(sa.Column('dingtalk_staff_id', sa.String(length=64), nullable=True))
            batch_op.create_unique_constraint('uq_users_wecom_userid', ['wecom_userid'])
            batch_op.create_unique_constraint('uq_users_dingtalk_staff_id', ['dingtalk_staff_id'])

    _rebuilding_users(alter)
    conn = op.get_bind()
    for channel, column in COLUMNS:
        conn.execute(sa.text(
            f"UPDATE users SET {column} = (SELECT i.external_id FROM user_identities i "
            f"WHERE i.user_id = users.id AND i.channel = '{channel}')"
        ))
