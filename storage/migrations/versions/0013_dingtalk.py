"""DingTalk: API calls per month, used action links

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 02:10:00

- platform_api_calls: the API calls a channel made in a month ("YYYY-MM", org time zone), unique per (channel,
  month); DingTalk's standard edition allows 5,000 a month. ``warned_at``: when the admins were warned at 80 %
  (once per month whatever restarts and replicas do);
- dingtalk_action_links: the action links (signed button URLs of the no-template fallback) already used, unique
  by the token's SHA-256: a link works once.
"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = "0013"
down_revision: Union[str, Sequence[str], None] = "0012"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "platform_api_calls",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("warned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("channel", "month", name="uq_platform_api_calls_channel_month"),
    )
    op.create_table(
        "dingtalk_action_links",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("card_ref", sa.String(length=200), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("token_hash", name="uq_dingtalk_action_links_token_hash"),
    )


def downgrade() -> None:
    op.drop_table("dingtalk_action_links")
    op.drop_table("platform_api_calls")
