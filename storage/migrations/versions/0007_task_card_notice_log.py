"""task cards keep their escalation notices (notice_log) instead of the audit log being read for them

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 14:00:00

Existing cards get their notices from the audit rows that recorded them (escalation.level / escalation.repeat with
a notice number), so notices sent before the upgrade are still settled when their card closes.
"""

import json
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = "0007"
down_revision: Union[str, Sequence[str], None] = "0006"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("task_cards", schema=None) as batch_op:
        batch_op.add_column(sa.Column("notice_log", sa.JSON(), server_default="[]", nullable=False))
    conn = op.get_bind()
    rows = conn.execute(
        sa.text(
            "SELECT entity_id, changes FROM audit_log WHERE entity = 'task_card'"
            " AND action IN ('escalation.level', 'escalation.repeat') ORDER BY id"
        )
    ).all()
    logs: dict[str, list[dict[str, object]]] = {}
    for entity_id, changes in rows:
        data = json.loads(changes) if isinstance(changes, str) else (changes or {})
        if data.get("notice"):
            logs.setdefault(str(entity_id), []).append(
                {"n": data["notice"], "targets": list(data.get("targets") or [])}
            )
    cards = sa.table("task_cards", sa.column("id", sa.BigInteger()), sa.column("notice_log", sa.JSON()))
    for card_id, log in logs.items():
        if card_id.isdigit():
            conn.execute(sa.update(cards).where(cards.c.id == int(card_id)).values(notice_log=log))


def downgrade() -> None:
    with op.batch_alter_table("task_cards", schema=None) as batch_op:
        batch_op.drop_column("notice_log")
