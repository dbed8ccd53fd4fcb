"""customer health: nightly scores, alerts, grade changes, advice (issue 14)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 18:30:00

- customers.grade_since / previous_grade: visit frequency follows the grade in force at a cycle's start;
- customer_scores: one row per customer and night (components 0-100, the raw values, the suggested grade);
  read by night (the alerts, the report) and by customer (客户's trend) through the unique index;
- customer_alerts: once per (customer, rule, period); read by night and by customer;
- grade_changes: 调级 requests and their decisions, read by customer and by approver;
- customer_advice: a manager's advice per customer, newest first.
"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = "0016"
down_revision: Union[str, Sequence[str], None] = "0015"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
STAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("customers", sa.Column("grade_since", sa.Date(), nullable=True))
    op.add_column("customers", sa.Column("previous_grade", sa.String(length=1), nullable=True))
    op.create_table(
        "customer_scores",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        # No foreign key: derived rows written only from customers; the check cost a quarter of the night's writes.
        sa.Column("customer_id", BIG_ID, nullable=False),
        sa.Column("night", sa.Date(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("purchases", sa.Float(), nullable=False),
        sa.Column("trials", sa.Float(), nullable=False),
        sa.Column("events", sa.Float(), nullable=False),
        sa.Column("purchases_amount", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("trials_count", sa.Integer(), nullable=False),
        sa.Column("attendees", sa.Integer(), nullable=False),
        sa.Column("grade", sa.String(length=1), nullable=True),
        sa.Column("suggested_grade", sa.String(length=1), nullable=True),
        sa.Column("computed_at", STAMP, nullable=False),
        sa.UniqueConstraint("customer_id", "night", name="uq_customer_scores_customer_night"),
    )
    op.create_index("ix_customer_scores_night", "customer_scores", ["night"])
    op.create_table(
        "customer_alerts",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("customer_id", BIG_ID, sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("rule", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("level", sa.String(length=8), nullable=False),
        sa.Column("title", sa.String(length=40), nullable=False),
        sa.Column("period", sa.String(length=24), nullable=False),
        sa.Column("night", sa.Date(), nullable=False),
        sa.Column("rep_id", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("created_at", STAMP, nullable=False),
        sa.UniqueConstraint("customer_id", "rule", "period", name="uq_customer_alerts_customer_rule_period"),
    )
    op.create_index("ix_customer_alerts_night", "customer_alerts", ["night"])
    op.create_index("ix_customer_alerts_customer_night", "customer_alerts", ["customer_id", "night"])
    op.create_table(
        "grade_changes",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("customer_id", BIG_ID, sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("old_grade", sa.String(length=1), nullable=True),
        sa.Column("new_grade", sa.String(length=1), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("requested_at", STAMP, nullable=False),
        sa.Column("approver_id", sa.String(length=64), nullable=True),
        sa.Column("ref", sa.String(length=96), nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", STAMP, nullable=True),
        sa.Column("decision_reason", sa.String(length=500), nullable=True),
    )
    op.create_index("ix_grade_changes_customer_state", "grade_changes", ["customer_id", "state"])
    op.create_index("ix_grade_changes_approver_state", "grade_changes", ["approver_id", "state"])
    op.create_table(
        "customer_advice",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("customer_id", BIG_ID, sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("author_id", sa.String(length=64), nullable=False),
        sa.Column("text", sa.String(length=500), nullable=False),
        sa.Column("created_at", STAMP, nullable=False),
    )
    op.create_index("ix_customer_advice_customer_created", "customer_advice", ["customer_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_customer_advice_customer_created", table_name="customer_advice")
    op.drop_table("customer_advice")
    op.drop_index("ix_grade_changes_approver_state", table_name="grade_changes")
    op.drop_index("ix_grade_changes_customer_state", table_name="grade_changes")
    op.drop_table("grade_changes")
    op.drop_index("ix_customer_alerts_customer_night", table_name="customer_alerts")
    op.drop_index("ix_customer_alerts_night", table_name="customer_alerts")
    op.drop_table("customer_alerts")
    op.drop_index("ix_customer_scores_night", table_name="customer_scores")
    op.drop_table("customer_scores")
    op.drop_column("customers", "previous_grade")
    op.drop_column("customers", "grade_since")
