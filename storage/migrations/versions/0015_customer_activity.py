"""customer activity: purchases per month, new-product trials, academic events (issue 14)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 04:00:00

- customer_purchases: a customer's purchases in a month (``month`` = its first day), NUMERIC(14, 2) yuan >= 0;
  unique per (customer, month), which also serves the nightly score's reads by customer and month;
- customer_trials: a new-product trial, unique per (customer, product, day); read by (customer, day);
- customer_events: an academic event with its attendees >= 0, unique per (customer, event, day); read by
  (customer, day).

Per customer only: no doctor, no prescription count (统方 is forbidden).
"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = "0015"
down_revision: Union[str, Sequence[str], None] = "0014"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _common() -> list[sa.Column]:
    return [
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "customer_purchases",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("customer_id", BIG_ID, sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=14, scale=2), nullable=False),
        *_common(),
        sa.UniqueConstraint("customer_id", "month", name="uq_customer_purchases_customer_month"),
        sa.CheckConstraint("amount >= 0", name=op.f("ck_customer_purchases_amount_not_negative")),
    )
    op.create_table(
        "customer_trials",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("customer_id", BIG_ID, sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("product", sa.String(length=100), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        *_common(),
        sa.UniqueConstraint("customer_id", "product", "day", name="uq_customer_trials_customer_product_day"),
    )
    op.create_index("ix_customer_trials_customer_day", "customer_trials", ["customer_id", "day"])
    op.create_table(
        "customer_events",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("customer_id", BIG_ID, sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("event", sa.String(length=200), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("attendees", sa.Integer(), nullable=False),
        *_common(),
        sa.UniqueConstraint("customer_id", "event", "day", name="uq_customer_events_customer_event_day"),
        sa.CheckConstraint("attendees >= 0", name=op.f("ck_customer_events_attendees_not_negative")),
    )
    op.create_index("ix_customer_events_customer_day", "customer_events", ["customer_id", "day"])


def downgrade() -> None:
    op.drop_index("ix_customer_events_customer_day", table_name="customer_events")
    op.drop_table("customer_events")
    op.drop_index("ix_customer_trials_customer_day", table_name="customer_trials")
    op.drop_table("customer_trials")
    op.drop_table("customer_purchases")
