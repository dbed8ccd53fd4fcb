"""visit plans, the digest's follow-ups, a customer's responsible rep

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 16:05:00

- plan_items: a rep's planned customer for a day or a week (``period`` day | week; ``day`` is the day, or the
  Monday of the week; ``starts_at`` / ``ends_at`` that span in UTC): done when that rep has a visit to that
  customer inside the span (derived, never stored: an imported or corrected visit counts at once);
  unique per (rep, customer, period, day), so a re-import or a repeated ``计划`` adds nothing twice;
- digest_followups: the follow-up card a manager gets for each rep below the plan threshold on a day
  (unique per rep and day: once, whatever restarts and replicas do), handled with 已复盘 / 备注;
- digest_sends: one row per person, kind and day a scheduled digest went out (unique), written in the same
  transaction as its outbox rows: a restart, a retried run or a second replica never sends one twice;
- customers.rep_id: the rep responsible for the customer (optional; the customer CSV's ``rep`` column): the
  digest's A-customer figures of a team are over its reps' customers.
"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = "0011"
down_revision: Union[str, Sequence[str], None] = "0010"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "plan_items",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("rep_id", sa.String(length=64), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("customer_id", BIG_ID, sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("period", sa.String(length=8), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("purpose", sa.String(length=200), nullable=True),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("rep_id", "customer_id", "period", "day", name="uq_plan_items_rep_customer_period_day"),
    )
    op.create_index("ix_plan_items_day_rep", "plan_items", ["day", "rep_id"])
    op.create_index("ix_plan_items_rep_day", "plan_items", ["rep_id", "day"])
    op.create_table(
        "digest_followups",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("rep_id", sa.String(length=64), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("manager_id", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("plan_items", sa.Integer(), nullable=False),
        sa.Column("plan_done", sa.Integer(), nullable=False),
        sa.Column("ref", sa.String(length=96), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("handled_by", sa.String(length=64), nullable=True),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("rep_id", "day", name="uq_digest_followups_rep_day"),
    )
    op.create_index("ix_digest_followups_manager_status", "digest_followups", ["manager_id", "status"])
    op.create_table(
        "digest_sends",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("user_id", "kind", "day", name="uq_digest_sends_user_kind_day"),
    )
    # A plain ALTER on both backends (a batch rebuild of customers would trip the foreign keys that point at it).
    op.add_column("customers", sa.Column("rep_id", sa.String(length=64), nullable=True))
    op.create_index("ix_visits_customer_at", "visits", ["customer_id", "visited_at"])
    op.create_index("ix_task_cards_closed_at", "task_cards", ["closed_at"])
    op.create_index("ix_customers_rep_grade", "customers", ["rep_id", "grade"])
    # The digest's first responses of a period (bench/digest.py).
    op.create_index("ix_task_cards_first_response", "task_cards", ["first_response_at"])


def downgrade() -> None:
    op.drop_index("ix_task_cards_first_response", table_name="task_cards")
    op.drop_index("ix_customers_rep_grade", table_name="customers")
    op.drop_index("ix_task_cards_closed_at", table_name="task_cards")
    op.drop_index("ix_visits_customer_at", table_name="visits")
    op.execute("ALTER TABLE customers DROP COLUMN rep_id")  # SQLite >= 3.35 and PostgreSQL
    op.drop_table("digest_sends")
    op.drop_index("ix_digest_followups_manager_status", table_name="digest_followups")
    op.drop_table("digest_followups")
    op.drop_index("ix_plan_items_rep_day", table_name="plan_items")
    op.drop_index("ix_plan_items_day_rep", table_name="plan_items")
    op.drop_table("plan_items")
