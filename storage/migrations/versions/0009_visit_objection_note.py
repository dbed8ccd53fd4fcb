"""visits keep what the rep said about an objection (objection_note: 其他 and what it was)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 15:20:00

A nullable column of its own, so the objection itself stays one of the configured words (the statistics count
those) and nothing the rep said is lost. Visits from before have no note.
"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = "0009"
down_revision: Union[str, Sequence[str], None] = "0008"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.add_column(sa.Column("objection_note", sa.String(length=200), nullable=True))


def downgrade() -> None:
    # A plain ALTER (SQLite >= 3.35, PostgreSQL): a batch rebuild would drop a table other rows point at.
    op.execute("ALTER TABLE visits DROP COLUMN objection_note")
