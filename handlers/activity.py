"""Trials and academic events logged in chat (issue 14, docs/imports.md): ``试用 浙一 超声刀X1 [日期]`` and
``学术 浙二 骨科沙龙 参会:3 [日期]``; reps and the marketing department."""

from __future__ import annotations

import hashlib
import re
from datetime import date

from bot.core.routing import Context, Router, command
from bot.dialogs.engine import leaves_dialog
from bot.parsing.when import parse_date
from bot.services import activity as svc
from bot.services.plans import local_today
from cards.model import Button, Card
from cards.payload import PayloadError
from cards.suggest import SuggestedText
from storage.vocab import Role

router = Router("activity")

TRIAL = ("试用", "trial")
EVENT = ("学术", "event")
_ROLES = (Role.REP, Role.MEMBER, Role.HEAD)
# 参会:3, 参会：3, 参会3, 参会3人, 人数:3, 参会人数:3; after a colon anything is the count (and refused if it is not
# one); without one only digits are, so a name word like 参会者沙龙 stays part of the event's name.
_ATTENDEES = re.compile(r"^(?:参会人数|参会|人数|attendees)(?:[:：=](.*?)|(\d+))人?$", re.IGNORECASE)


def _label(day: date) -> str:
    return day.strftime("%m-%d")


def _split_day(ctx: Context, words: list[str]) -> tuple[list[str], date | None, str | None]:
    """The words without a trailing date, the date (today by default), or the unreadable date word."""
    today = local_today(ctx.now, ctx.runtime.settings.org.tz)
    if len(words) > 2:
        day = parse_date(words[-1], today)
        if day is not None:
            return words[:-1], day, None
        if re.fullmatch(r"\d{1,4}[-/.]\d{1,2}(?:[-/.]\d{1,2})?", words[-1]):
            return words[:-1], None, words[-1]
    return words, today, None


def _choice_card(ctx: Context, keyword: str, word: str, names: list[str]) -> Card | None:
    """「浙大」可能是以下医院 with one button per hospital; a button sends the same line with the hospital's full
    name (handled as if typed: ``help.send_suggested``). None when a line is too long for a button."""
    words = ctx.args.split()
    at = words.index(word)
    buttons = []
    for name in names:
        line = " ".join([keyword, *words[:at], name, *words[at + 1 :]])
        try:
            buttons.append(Button.of(name, SuggestedText(line)))
        except PayloadError:
            return None
    ref = "ac-" + hashlib.sha256(f"{ctx.event.channel}:{ctx.event.dedup_key}".encode()).hexdigest()[:20]
    return Card(ref=ref, title=ctx.t("activity.choose", text=word), buttons=buttons)


async def _customer(ctx: Context, keyword: str, word: str) -> tuple[int, str] | None:
    """The hospital ``word`` names, matched like a visit's; otherwise the reply saying why (an ambiguous name: a
    button per hospital) and None."""
    matcher = await ctx.runtime.directory.matcher(ctx.session)
    result = matcher.match(word)
    if result.best is not None:
        return result.best.id, result.best.name
    names = "、".join(c.entry.name for c in result.candidates)
    if result.status == "ambiguous":
        card = _choice_card(ctx, keyword, word, [c.entry.name for c in result.candidates])
        if card is not None:
            ctx.reply_card(card)
        else:
            ctx.reply(ctx.t("activity.ambiguous", text=word, names=names))
    else:
        suggest = ctx.t("visit.suggest", names=names) if names else ""
        ctx.reply(ctx.t("activity.unknown_customer", text=word, suggest=suggest))
    return None


@router.route(command(*TRIAL, roles=_ROLES), leaves_dialog)
async def log_trial(ctx: Context) -> None:
    """``试用 <客户> <产品> [日期]``: created, or said to be already logged."""
    if not svc.may_log(ctx.user):
        ctx.reply(ctx.t("no_permission"))
        return
    words, day, bad_day = _split_day(ctx, ctx.args.split())
    if bad_day is not None:
        ctx.reply(ctx.t("activity.bad_day", value=bad_day))
        return
    if len(words) < 2 or day is None:
        ctx.reply(ctx.t("activity.trial_usage"))
        return
    product = " ".join(words[1:])
    if len(product) > svc.PRODUCT_MAX:
        ctx.reply(ctx.t("activity.too_long", limit=svc.PRODUCT_MAX))
        return
    customer = await _customer(ctx, TRIAL[0], words[0])
    if customer is None:
        return
    done = await svc.log_trial(
        ctx.session,
        customer_id=customer[0],
        product=product,
        day=day,
        actor=ctx.user,
        now=ctx.now,
        channel=ctx.event.channel,
    )
    key = "activity.trial_logged" if done.created else "activity.trial_already"
    ctx.reply(ctx.t(key, customer=customer[1], product=product, day=_label(day)))


@router.route(command(*EVENT, roles=_ROLES), leaves_dialog)
async def log_event(ctx: Context) -> None:
    """``学术 <客户> <活动名> 参会:<人数> [日期]``: created, or said to be already logged."""
    if not svc.may_log(ctx.user):
        ctx.reply(ctx.t("no_permission"))
        return
    attendees: int | None = None
    rest: list[str] = []
    for word in ctx.args.split():
        m = _ATTENDEES.match(word)
        if m is None:
            rest.append(word)
            continue
        count = m.group(1) if m.group(1) is not None else m.group(2)
        if not re.fullmatch(r"\d{1,6}", count):
            ctx.reply(ctx.t("activity.bad_attendees", value=word))
            return
        attendees = int(count)
    words, day, bad_day = _split_day(ctx, rest)
    if bad_day is not None:
        ctx.reply(ctx.t("activity.bad_day", value=bad_day))
        return
    if len(words) < 2 or day is None:
        ctx.reply(ctx.t("activity.event_usage"))
        return
    if attendees is None:
        ctx.reply(ctx.t("activity.no_attendees"))
        return
    name = " ".join(words[1:])
    if len(name) > svc.EVENT_MAX:
        ctx.reply(ctx.t("activity.too_long", limit=svc.EVENT_MAX))
        return
    customer = await _customer(ctx, EVENT[0], words[0])
    if customer is None:
        return
    done = await svc.log_event(
        ctx.session,
        customer_id=customer[0],
        event=name,
        day=day,
        attendees=attendees,
        actor=ctx.user,
        now=ctx.now,
        channel=ctx.event.channel,
    )
    key = "activity.event_logged" if done.created else "activity.event_already"
    ctx.reply(ctx.t(key, customer=customer[1], event=name, attendees=attendees, day=_label(day)))
