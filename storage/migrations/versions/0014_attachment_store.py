"""the attachment store: attachments, their uploads to platforms, who they were sent to

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 02:10:00

- attachments: a file the bot holds itself (downloaded when it arrived, or uploaded in the console); the bytes are
  in the attachment store under ``storage_key`` (content-addressed by ``sha256``); unique per (source channel,
  source media id), so a platform retry or a second download stores once;
- attachment_uploads: the platform media id an attachment got when it was passed on (WeCom: valid 3 days),
  reused while it is still valid; unique per (attachment, channel);
- attachment_grants: the people an attachment was sent to (they may read it on the console).
"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = "0014"
down_revision: Union[str, Sequence[str], None] = "0013"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "attachments",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("storage_key", sa.String(length=200), nullable=False),
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.Column("source_channel", sa.String(length=32), nullable=False),
        sa.Column("source_media_id", sa.String(length=256), nullable=True),
        sa.Column("card_id", BIG_ID, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("token", name="uq_attachments_token"),
        sa.UniqueConstraint("source_channel", "source_media_id", name="uq_attachments_source"),
    )
    op.create_index("ix_attachments_sha256", "attachments", ["sha256"])
    op.create_index("ix_attachments_card_id", "attachments", ["card_id"])
    op.create_index("ix_attachments_owner_at", "attachments", ["owner_id", "created_at"])
    op.create_table(
        "attachment_uploads",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("attachment_id", BIG_ID, sa.ForeignKey("attachments.id"), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("platform_media_id", sa.String(length=256), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("attachment_id", "channel", name="uq_attachment_uploads_attachment_channel"),
    )
    op.create_table(
        "attachment_grants",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("attachment_token", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_attachment_grants_token_user", "attachment_grants", ["attachment_token", "user_id"])


def downgrade() -> None:
    op.drop_index("ix_attachment_grants_token_user", table_name="attachment_grants")
    op.drop_table("attachment_grants")
    op.drop_table("attachment_uploads")
    op.drop_index("ix_attachments_owner_at", table_name="attachments")
    op.drop_index("ix_attachments_card_id", table_name="attachments")
    op.drop_index("ix_attachments_sha256", table_name="attachments")
    op.drop_table("attachments")
