"""Escalation notices: take over, reassign, snooze (with a reason); 升级记录 and the admin's 升级策略."""

from __future__ import annotations

import logging
from datetime import datetime

from bot.core.events import CardAction
from bot.core.intents import UpdateCard
from bot.core.routing import Context, Router, command, in_flow, is_text
from bot.infra import i18n
from bot.services import escalation as esc
from bot.services import escalation_words as words
from bot.services import recipients
from bot.services import requests as svc
from bot.services.escalation_words import Person
from cards.escalation import REASSIGN, TAKE, AssignTo, EscalationTap, assignee_card, settled_escalation
from cards.payload import parse_id
from handlers.requests import refresh_task_card
from storage.models import TaskCard
from storage.vocab import Role

log = logging.getLogger(__name__)
router = Router("escalation")

SNOOZE_FLOW = "esc_snooze"
HISTORY = ("升级记录", "escalations", "history")
POLICY = ("升级策略", "policy")


def _fmt(ctx: Context, when: datetime) -> str:
    return i18n.fmt_when(when, ctx.runtime.settings.org.tz)


def _settle_tapped(ctx: Context, status: str) -> None:
    """The tapped notice loses its buttons and says what was done."""
    if isinstance(ctx.event, CardAction) and ctx.event.card_ref:
        ctx.update_card(settled_escalation(ctx.event.card_ref, ctx.t("esc.settled_title"), status))


async def _handed_over(ctx: Context, done: svc.HandOver, kind: str) -> None:
    """Every copy of the card shows its new holder; the rep is told who handed it to whom (or who took it over),
    and whoever held it before that they no longer do."""
    ctx.runtime.metrics.escalations.labels(kind).inc()
    await refresh_task_card(ctx, done.card)
    card, actor, holder = done.card, ctx.user.name, done.holder.name
    if done.rep is not None and done.request is not None:
        department = recipients.department_name(ctx.runtime.settings, card.department, done.rep.locale)
        key = "notice.taken_over" if kind == "takeover" else "notice.reassigned"
        notice = {"no": svc.request_no(done.request.id), "department": department, "title": card.title}
        ctx.intents.append(
            recipients.text_to(
                ctx.runtime.channel_for, done.rep, ctx.event.channel, key, actor=actor, holder=holder, **notice
            )
        )
    if done.handed_away is not None:
        away = {"no": svc.card_no(card.id), "title": card.title, "actor": actor, "holder": holder}
        key = f"esc.handed_away_{kind}"
        ctx.intents.append(recipients.text_to(ctx.runtime.channel_for, done.handed_away, "", key, **away))


async def _take_over(ctx: Context, card: TaskCard) -> None:
    await _handed_over(ctx, await svc.take_over(ctx.session, card, ctx.user, ctx.now, ctx.event.channel), "takeover")
    text = ctx.t("esc.took_over", no=svc.card_no(card.id), title=card.title)
    ctx.reply(text)
    _settle_tapped(ctx, text)


async def _offer_assignees(ctx: Context, card: TaskCard) -> None:
    people = await svc.assignees(ctx.session, card)
    ref = f"{card.ref}-a{card.notices}-{len(card.watchers or [])}"
    no = svc.card_no(card.id)
    ctx.reply_card(assignee_card(ref, ctx.locale, card.id, no, [(u.id, u.name) for u in people]))


def _ask_snooze_reason(ctx: Context, card: TaskCard, choice: str) -> None:
    svc.check_open(card)
    until = esc.snooze_until(ctx.runtime.settings, ctx.now, choice)
    ref = ctx.event.card_ref if isinstance(ctx.event, CardAction) else ""
    ctx.conversation.start(SNOOZE_FLOW, {"card_id": card.id, "until": until.isoformat(), "ref": ref})
    ctx.reply(ctx.t("esc.ask_snooze_reason", no=svc.card_no(card.id), until=_fmt(ctx, until)))


@router.tap(EscalationTap)
async def tap_escalation(ctx: Context, tap: EscalationTap) -> None:
    """接手 / 转派 / 暂缓 on an escalation notice: (card id, action)."""
    op = tap.op
    card = await svc.escalated_card(ctx.session, tap.card_id, ctx.user, str(op))
    try:
        if op == TAKE:
            await _take_over(ctx, card)
        elif op == REASSIGN:
            await _offer_assignees(ctx, card)
        else:
            _ask_snooze_reason(ctx, card, op.removeprefix("snooze_"))
    except svc.CardClosed as exc:
        # The notice outlived its card: say so, and the tapped notice loses its buttons.
        ctx.reply(await ctx.error_text(exc))
        _settle_tapped(ctx, ctx.t(f"task.state.{exc.state}"))


@router.route(in_flow(SNOOZE_FLOW), is_text)
async def snooze_reason(ctx: Context) -> None:
    """The reason for a snooze, typed after the tap."""
    data = dict(ctx.conversation.data)
    ctx.conversation.clear()
    card = await svc.load_card(ctx.session, parse_id(str(data.get("card_id", ""))))
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
    card = await svc.escalated_card(ctx.session, tap.card_id, ctx.user, "assign")
    done = await svc.reassign(ctx.session, card, ctx.user, tap.user_id, ctx.now, ctx.event.channel)
    await _handed_over(ctx, done, "reassign")
    no, member = svc.card_no(card.id), done.holder
    ctx.reply(ctx.t("esc.assigned", no=no, name=member.name))
    notice = {"actor": ctx.user.name, "no": no, "title": card.title}
    ctx.intents.append(recipients.text_to(ctx.runtime.channel_for, member, "", "esc.assigned_notice", **notice))
    if isinstance(ctx.event, CardAction) and ctx.event.card_ref:
        ctx.update_card(settled_escalation(ctx.event.card_ref, ctx.t("esc.choose_assignee", no=no), f"✓ {member.name}"))


def _words(ctx: Context, people: dict[str, Person]) -> words.Words:
    return words.Words(ctx.locale, ctx.runtime.settings.org.tz, people)


@router.route(command(*HISTORY, roles=(Role.MEMBER, Role.HEAD, Role.DIRECTOR, Role.ADMIN)))
async def escalation_history(ctx: Context) -> None:
    """`升级记录 T12`: every transition, reminder and escalation of the card in plain words, and what comes next."""
    history = await svc.card_history(ctx.session, ctx.user, ctx.args)
    card = history.card
    w = _words(ctx, {uid: words.person_of(u, card.department) for uid, u in history.people.items()})
    lines = [ctx.t("esc.history_header", no=svc.card_no(card.id), title=card.title)]
    lines += [words.history_line(w, r) for r in history.rows]
    step = history.upcoming
    if step is None:
        lines.append(ctx.t("esc.none_next"))
    else:
        what = words.next_step(w, step, history.next_targets, card.holder_id)
        lines.append(ctx.t("esc.next", when=_fmt(ctx, step.at), what=what))
    ctx.reply("\n".join(lines))


@router.route(command(*POLICY, roles=(Role.HEAD, Role.DIRECTOR, Role.ADMIN)))
async def show_policy(ctx: Context) -> None:
    """Head, director, admin: `升级策略 [部门] [申请类型]` — in hours and people, the reminder and levels new cards
    get (names as people write them: 物流, 物流部, 跟台, 手术跟台, logistics, surgery_support)."""
    if not {Role.ADMIN, Role.DIRECTOR, Role.HEAD} & set(ctx.user.roles or []):
        ctx.reply(ctx.t("no_permission"))
        return
    settings = ctx.runtime.settings
    views = await esc.policy_views(ctx.session, settings, ctx.args, ctx.user.department or "")
    w = _words(ctx, {})
    ctx.reply("\n\n".join("\n".join(words.policy_lines(w, settings, view)) for view in views))
