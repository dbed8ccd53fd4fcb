"""Exports in chat (issue 15, docs/exports.md): ``导出 拜访 本月``, ``导出 审计 2026-11``, ``导出 申请 上月``,
``导出 任务 本周``, ``导出 计划 11-01~11-30``: the file comes back as a file message on the chat platforms or a
download link (console). Admins and compliance only; every export, and every refusal, is audited."""

from __future__ import annotations

from bot.core.routing import Context, Router, command
from bot.dialogs.engine import leaves_dialog
from bot.services import exports

router = Router("exports")

EXPORT = ("导出", "export")


@router.route(command(*EXPORT), leaves_dialog)
async def export(ctx: Context) -> None:
    """The kind and the period after the word; the service checks who may and builds the file."""
    ctx.intents.extend(
        await exports.chat_export(ctx.session, ctx.settings, ctx.user, ctx.args, ctx.event.channel, ctx.now)
    )
