"""Escalation notices: take over, reassign, snooze (with a reason); 升级记录 and the admin's 升级策略."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select

from bot.calendar.workcal import get_calendar
from bot.config import EscalationLevelConfig
from bot.core.events import CardAction
from bot.core.intents import UpdateCard
from bot.core.routing import Context, Router, command, in_flow, is_text
from bot.infra import i18n
from bot.services import escalation as esc
from bot.services import recipients as views
from bot.services import requests as svc
from cards.escalation import REASSIGN, TAKE, AssignTo, EscalationTap, assignee_card, settled_escalation
from cards.payload import parse_id
from handlers.requests import refresh_task_card, say_error
from storage.models import AuditLog, SupportRequest, TaskCard, User
from storage.vocab import Role

log = logging.getLogger(__name__)
router = Router("escalation")

SNOOZE_FLOW = "esc_snooze"
HISTORY = ("升级记录", "escalations", "history")
POLICY = ("升级策略", "policy")


def may_handle(user: User, card: TaskCard) -> bool:
    """Heads of the department, directors, admins, and whoever an escalation of this card was sent to."""
    return svc.may_override(user, card) or user.id in (card.watchers or [])


def _closed(card: TaskCard) -> svc.RequestError:
    return svc.RequestError("task.closed", no=svc.card_no(card.id), state_key=f"task.state.{card.state}")


def _fmt(ctx: Context, when: datetime) -> str:
    return i18n.fmt_when(when, ctx.runtime.settings.org.tz)


def _settle_tapped(ctx: Context, status: str) -> None:
    """The tapped notice loses its buttons and says what was done."""
    if isinstance(ctx.event, CardAction) and ctx.event.card_ref:
        ctx.update_card(settled_escalation(ctx.event.card_ref, ctx.t("esc.settled_title"), status))


async def _load(ctx: Context, raw: str) -> TaskCard | None:
    card_id = parse_id(raw)
    return await ctx.session.get(TaskCard, card_id, with_for_update=True) if card_id is not None else None


def _snooze_until(ctx: Context, choice: str) -> datetime:
    if choice == "1h":
        return ctx.now + timedelta(hours=1)
    if choice == "4h":
        return ctx.now + timedelta(hours=4)
    # "Until tomorrow 09:00": the start of the next working day.
    cal = get_calendar(ctx.runtime.settings.calendar, ctx.runtime.settings.org.tz)
    tz = ctx.runtime.settings.org.tz
    tomorrow = (ctx.now.astimezone(tz) + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return cal.next_working_start(tomorrow)


async def _hand_over(ctx: Context, card: TaskCard, holder: User, kind: str) -> None:
    """Make ``holder`` the card's holder (a claim if nobody had responded), audit it, update every copy."""
    previous = card.holder_id
    if card.first_response_at is None:
        card.first_response_at = ctx.now
    if card.state == svc.OPEN:
        card.state = svc.CLAIMED
    card.holder_id = holder.id
    card.state_since = card.updated_at = ctx.now
    ctx.audit(f"escalation.{kind}", "task_card", card.id, {"holder": [previous, holder.id], "state": card.state})
    ctx.runtime.metrics.escalations.labels(kind).inc()
    await refresh_task_card(ctx, card)
    request = await ctx.session.get(SupportRequest, card.request_id)
    rep = await ctx.session.get(User, request.rep_id) if request else None
    if rep is not None and request is not None:
        department = views.department_name(ctx.runtime.settings, card.department, rep.locale)
        ctx.intents.append(
            views.text_to(
                ctx.runtime,
                rep,
                ctx.event.channel,
                "notice.claimed",
                no=svc.request_no(request.id),
                department=department,
                holder=holder.name,
                title=card.title,
            )
        )


@router.tap(EscalationTap)
async def tap_escalation(ctx: Context, tap: EscalationTap) -> None:
    """接手 / 转派 / 暂缓 on an escalation notice: (card id, action)."""
    card = await _load(ctx, str(tap.card_id))
    if card is None:
        ctx.reply(ctx.t("stale_button"))
        return
    no = svc.card_no(card.id)
    if not may_handle(ctx.user, card):
        log.warning("user %s may not act on the escalation of card %s", ctx.user.id, card.id)
        ctx.audit("escalation.denied", "task_card", card.id, {"op": str(tap.op)})
        ctx.reply(ctx.t("esc.not_allowed", no=no))
        return
    if card.state in svc.CLOSED:
        await say_error(ctx, _closed(card))
        _settle_tapped(ctx, ctx.t(f"task.state.{card.state}"))
        return
    op = tap.op
    if op == TAKE:
        await _hand_over(ctx, card, ctx.user, "takeover")
        ctx.reply(ctx.t("esc.took_over", no=no, title=card.title))
        _settle_tapped(ctx, ctx.t("esc.took_over", no=no, title=card.title))
        return
    if op == REASSIGN:
        people = [
            u
            for u in await svc.department_people(ctx.session, card.department)
            if u.id != card.holder_id and Role.MEMBER in (u.roles or [])
        ]
        if not people:
            ctx.reply(ctx.t("esc.no_members"))
            return
        ref = f"{card.ref}-a{card.notices}-{len(card.watchers or [])}"
        ctx.reply_card(assignee_card(ref, ctx.locale, card.id, no, [(u.id, u.name) for u in people]))
        return
    until = _snooze_until(ctx, op.removeprefix("snooze_"))
    ref = ctx.event.card_ref if isinstance(ctx.event, CardAction) else ""
    ctx.conversation.start(SNOOZE_FLOW, {"card_id": card.id, "until": until.isoformat(), "ref": ref})
    ctx.reply(ctx.t("esc.ask_snooze_reason", no=no, until=_fmt(ctx, until)))


@router.route(in_flow(SNOOZE_FLOW), is_text)
async def snooze_reason(ctx: Context) -> None:
    """The reason for a snooze, typed after the tap."""
    data = dict(ctx.conversation.data)
    ctx.conversation.clear()
    card = await _load(ctx, str(data.get("card_id", "")))
    if card is None or card.state in svc.CLOSED:
        ctx.reply(ctx.t("stale_button"))
        return
    until = datetime.fromisoformat(str(data["until"]))
    reason = ctx.text.strip()[:500]
    esc.snooze(ctx.session, card, ctx.user, until, reason, ctx.now, ctx.event.channel)
    ctx.runtime.metrics.escalations.labels("snooze").inc()
    text = ctx.t("esc.snoozed", no=svc.card_no(card.id), until=_fmt(ctx, until), reason=reason)
    ctx.reply(text)
    if data.get("ref"):
        # The notice that was tapped loses its buttons (the channel kept what it needs since the tap).
        settled = settled_escalation(str(data["ref"]), ctx.t("esc.settled_title"), text)
        ctx.intents.append(UpdateCard(channel=ctx.event.channel, user_ids=(ctx.user.id,), card=settled))


@router.tap(AssignTo)
async def assign_to(ctx: Context, tap: AssignTo) -> None:
    """A member chosen on the reassign card: (card id, user id)."""
    card = await _load(ctx, str(tap.card_id))
    if card is None:
        ctx.reply(ctx.t("stale_button"))
        return
    no = svc.card_no(card.id)
    if not may_handle(ctx.user, card):
        ctx.audit("escalation.denied", "task_card", card.id, {"op": "assign"})
        ctx.reply(ctx.t("esc.not_allowed", no=no))
        return
    if card.state in svc.CLOSED:
        await say_error(ctx, _closed(card))
        return
    member = await ctx.session.get(User, tap.user_id)
    if member is None or member not in await svc.department_people(ctx.session, card.department):
        ctx.reply(ctx.t("stale_button"))
        return
    await _hand_over(ctx, card, member, "reassign")
    ctx.reply(ctx.t("esc.assigned", no=no, name=member.name))
    ctx.intents.append(
        views.text_to(
            ctx.runtime, member, ctx.event.channel, "esc.assigned_notice", actor=ctx.user.name, no=no, title=card.title
        )
    )
    if isinstance(ctx.event, CardAction) and ctx.event.card_ref:
        ctx.update_card(settled_escalation(ctx.event.card_ref, ctx.t("esc.choose_assignee", no=no), f"✓ {member.name}"))


@router.route(command(*HISTORY))
async def escalation_history(ctx: Context) -> None:
    """`升级记录 T12`: every transition, reminder and escalation of the card, and what comes next."""
    card_id = svc.parse_card_no(ctx.args.split(" ", 1)[0]) if ctx.args else None
    if card_id is None:
        ctx.reply(ctx.t("esc.history_usage"))
        return
    card = await ctx.session.get(TaskCard, card_id)
    request = await ctx.session.get(SupportRequest, card.request_id) if card else None
    if card is None or request is None:
        ctx.reply(ctx.t("task.not_found", no=ctx.args))
        return
    if not (svc.may_act(ctx.user, card) or await svc.may_view(ctx.session, ctx.user, request)):
        ctx.reply(ctx.t("request.not_visible", no=svc.request_no(request.id)))
        return
    rows = list(
        await ctx.session.scalars(
            select(AuditLog)
            .where(AuditLog.entity == "task_card", AuditLog.entity_id == str(card.id))
            .order_by(AuditLog.at, AuditLog.id)
        )
    )
    people = await views.names(
        ctx.session, {r.actor_id or "" for r in rows} | {t for r in rows for t in r.changes.get("targets", [])}
    )
    lines = [ctx.t("esc.history_header", no=svc.card_no(card.id), title=card.title)]
    for r in rows:
        who = people.get(r.actor_id or "", r.actor_id or "⚙")
        targets = "、".join(people.get(t, t) for t in r.changes.get("targets", []))
        extra = f" → {targets}" if targets else ""
        if r.changes.get("reason"):
            extra += f"（{r.changes['reason']}）"
        if r.changes.get("until"):
            extra += f" ⏸ {_fmt(ctx, datetime.fromisoformat(r.changes['until']))}"
        level = f" L{r.changes['level']}" if r.changes.get("level") else ""
        lines.append(f"{_fmt(ctx, r.at)} {r.action}{level} {who}{extra}")
    nxt = card.next_due_at
    lines.append(ctx.t("esc.next", when=_fmt(ctx, nxt), what="") if nxt else ctx.t("esc.none_next"))
    ctx.reply("\n".join(lines))


def _describe(level: EscalationLevelConfig) -> str:
    delay = " + ".join(x for x in (level.after_sla or "", f"{level.after_hours:g}h" if level.after_hours else "") if x)
    repeat = f", every {level.repeat_every_hours:g}h" if level.repeat_every_hours else ""
    return f"{level.trigger} @ {delay} → {', '.join(level.notify)}{repeat}"


@router.route(command(*POLICY))
async def show_policy(ctx: Context) -> None:
    """Admin: `升级策略 [department] [request type]` — the levels and reminder new cards would get."""
    settings = ctx.runtime.settings
    if not {Role.ADMIN, Role.DIRECTOR, Role.HEAD} & set(ctx.user.roles or []):
        ctx.reply(ctx.t("no_permission"))
        return
    words = ctx.args.split()
    department = next((w for w in words if w in settings.departments), ctx.user.department or "")
    type_key = next((w for w in words if w in settings.request_types), "")
    unknown = [w for w in words if w not in settings.departments and w not in settings.request_types]
    if unknown:
        ctx.reply(ctx.t("esc.policy_usage"))
        return
    levels, remind = esc.effective_policy(settings, department, type_key)
    scope = " / ".join(x for x in (department, type_key) if x) or "default"
    lines = [ctx.t("esc.policy_header", scope=scope)]
    if remind:
        lines.append(f"remind @ {remind:.0%} of the deadline → holder (or the department)")
    lines += [f"L{n}: {_describe(level)}" for n, level in enumerate(levels, start=1)]
    rt = settings.request_types.get(type_key)
    if rt is not None:
        lines.append("calendar hours" if rt.calendar_hours else "working hours")
    ctx.reply("\n".join(lines))
