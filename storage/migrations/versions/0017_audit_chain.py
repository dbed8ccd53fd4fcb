"""audit chain: seq, prev_hash, row_hash on audit_log and the one-row audit_chain_head (issue 15)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 19:45:00

The existing rows are chained in id order (docs/audit.md), with the key of ``[audit] chain_key`` when the CLI runs
the upgrade (or ``$SALESBOT__AUDIT__CHAIN_KEY``), so an upgraded database verifies.
"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

from storage import audit_chain


revision: str = "0017"
down_revision: Union[str, Sequence[str], None] = "0016"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

BATCH = 2000


def upgrade() -> None:
    op.add_column("audit_log", sa.Column("seq", sa.BigInteger(), nullable=True))
    op.add_column("audit_log", sa.Column("prev_hash", sa.String(length=64), nullable=True))
    op.add_column("audit_log", sa.Column("row_hash", sa.String(length=64), nullable=True))
    op.create_index("ix_audit_log_seq", "audit_log", ["seq"], unique=True)
    op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_chain_head")),
    )
    conn = op.get_bind()
    log = sa.table(
        "audit_log",
        sa.column("id", sa.BigInteger()),
        sa.column("at", sa.DateTime(timezone=True)),
        sa.column("actor_id", sa.String()),
        sa.column("channel", sa.String()),
        sa.column("action", sa.String()),
        sa.column("entity", sa.String()),
        sa.column("entity_id", sa.String()),
        sa.column("changes", sa.JSON()),
        sa.column("seq", sa.BigInteger()),
        sa.column("prev_hash", sa.String()),
        sa.column("row_hash", sa.String()),
    )
    key = audit_chain.current_key()
    seq, prev, last_id = 0, audit_chain.GENESIS, None
    update = (
        log.update()
        .where(log.c.id == sa.bindparam("b_id"))
        .values(seq=sa.bindparam("b_seq"), prev_hash=sa.bindparam("b_prev"), row_hash=sa.bindparam("b_hash"))
    )
    while True:
        query = sa.select(log).order_by(log.c.id).limit(BATCH)
        if last_id is not None:
            query = query.where(log.c.id > last_id)
        rows = conn.execute(query).mappings().all()
        if not rows:
            break
        params = []
        for row in rows:
            seq += 1
            digest = audit_chain.hash_fields(dict(row), seq, prev, key)
            params.append({"b_id": row["id"], "b_seq": seq, "b_prev": prev, "b_hash": digest})
            prev, last_id = digest, row["id"]
        conn.execute(update, params)
    conn.execute(sa.text("INSERT INTO audit_chain_head (id, seq, hash) VALUES (1, :s, :h)"), {"s": seq, "h": prev})


def downgrade() -> None:
    op.drop_table("audit_chain_head")
    op.drop_index("ix_audit_log_seq", table_name="audit_log")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("row_hash")
        batch.drop_column("prev_hash")
        batch.drop_column("seq")
