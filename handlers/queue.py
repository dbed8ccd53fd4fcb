"""Department queues: 我的任务 / 待办, 待认领, 部门待办, 超时; paging in place and 打开 (a live copy of a card)."""

from __future__ import annotations

from bot.core.events import CardAction
from bot.core.routing import Context, Router, exact
from bot.dialogs.engine import leaves_dialog
from bot.services import queue
from cards.queue import QueueKind, QueueOpen, QueuePage, QueueView, queue_card
from storage.vocab import Role

router = Router("queue")

MY_TASKS = ("我的任务", "待办", "my tasks", "todo")
UNCLAIMED = ("待认领", "unclaimed")
DEPARTMENT = ("部门待办", "department tasks", "team tasks")
OVERDUE = ("超时", "overdue")


def _card(ctx: Context, view: QueueView, ref: str) -> None:
    """The page as a card: in place of the tapped one (a page turn), else a new one."""
    card = queue_card(view, ref, ctx.locale, ctx.runtime.settings.org.tz, ctx.now)
    tapped = ctx.event.card_ref if isinstance(ctx.event, CardAction) else ""
    if tapped == ref:
        ctx.update_card(card)
    else:
        ctx.reply_card(card)


async def _show(ctx: Context, kind: QueueKind) -> None:
    view = await queue.load(ctx.session, ctx.runtime.settings, ctx.user, kind, 0, ctx.now)
    if not view.total:
        ctx.reply(ctx.t("queue.empty"))
        return
    _card(ctx, view, queue.new_ref())


@router.route(exact(*MY_TASKS, roles=(Role.MEMBER, Role.HEAD, Role.DIRECTOR, Role.ADMIN)), leaves_dialog)
async def show_my_tasks(ctx: Context) -> None:
    """A member's open cards (held by them, unclaimed in the department); a head's department; a director's all."""
    await _show(ctx, QueueKind.MINE)


@router.route(exact(*UNCLAIMED, roles=(Role.MEMBER, Role.HEAD, Role.DIRECTOR, Role.ADMIN)), leaves_dialog)
async def show_unclaimed(ctx: Context) -> None:
    """The department's cards nobody has claimed yet."""
    await _show(ctx, QueueKind.UNCLAIMED)


@router.route(exact(*DEPARTMENT, roles=(Role.HEAD, Role.DIRECTOR, Role.ADMIN)), leaves_dialog)
async def show_department(ctx: Context) -> None:
    """Every open card of the department and who holds it, overdue and escalated first."""
    await _show(ctx, QueueKind.DEPARTMENT)


@router.route(exact(*OVERDUE, roles=(Role.MEMBER, Role.HEAD, Role.DIRECTOR, Role.ADMIN)), leaves_dialog)
async def show_overdue(ctx: Context) -> None:
    """The open cards past their deadline (a member's own, a head's department, a director's all)."""
    await _show(ctx, QueueKind.OVERDUE)


@router.tap(QueuePage)
async def turn_queue_page(ctx: Context, tap: QueuePage) -> None:
    """上一页 / 下一页: the page as it is now, in place of the tapped card."""
    view = await queue.load(ctx.session, ctx.runtime.settings, ctx.user, tap.kind, tap.page, ctx.now)
    ref = ctx.event.card_ref if isinstance(ctx.event, CardAction) and ctx.event.card_ref else queue.new_ref()
    _card(ctx, view, ref)


@router.tap(QueueOpen)
async def open_queue_item(ctx: Context, tap: QueueOpen) -> None:
    """打开: a copy of the task card with its live buttons, updated with the card from then on."""
    card = await queue.open_card(
        ctx.session, ctx.runtime.settings, ctx.user, tap.card_id, ctx.event.channel, ctx.event.kind
    )
    ctx.reply_card(card)
