"""Trials and academic events logged in chat (issue 14, docs/imports.md): ``试用 浙一 超声刀X1 [日期]`` and
``学术 浙二 骨科沙龙 参会:3 [日期]``; reps and the marketing department."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date

from bot.core.routing import Context, Router, command
from bot.dialogs.engine import DirectFormDialog, in_dialog, leaves_dialog
from bot.dialogs.form import FieldSpec, Form
from bot.dialogs.state import CustomerFieldState
from bot.infra import i18n
from bot.parsing.when import parse_date
from bot.services import activity as svc
from bot.services.plans import local_today
from cards.activity import ActivityChoice, ActivityConfirm
from cards.payload import parse_id
from handlers import hospital
from storage.models import Customer
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


async def _customer(ctx: Context, keyword: str, word: str) -> tuple[int, str] | None:
    """The hospital ``word`` names, matched like a visit's; otherwise the reply saying why (an ambiguous name: a
    button per hospital sending the same line with the full name) and None."""
    words = ctx.args.split()
    at = words.index(word)
    return await hospital.resolve(
        ctx, word, lambda name: " ".join([keyword, *words[:at], name, *words[at + 1 :]]), "as-"
    )


@router.route(command(*TRIAL, roles=_ROLES), leaves_dialog)
async def log_trial(ctx: Context) -> None:
    """``试用 <客户> <产品> [日期]``: created, or said to be already logged; a part missing is asked for."""
    if not svc.may_log(ctx.user):
        ctx.reply(ctx.t("no_permission"))
        return
    words, day, bad_day = _split_day(ctx, ctx.args.split())
    if bad_day is not None or day is None:
        ctx.reply(ctx.t("activity.bad_day", value=bad_day or ""))
        return
    product = " ".join(words[1:]) or None
    if product is not None and len(product) > svc.PRODUCT_MAX:
        ctx.reply(ctx.t("activity.too_long", limit=svc.PRODUCT_MAX))
        return
    customer = await _customer(ctx, TRIAL[0], words[0]) if words else None
    if words and customer is None:
        return
    if customer is None or product is None:
        await _ask_rest(ctx, "trial", customer, product, day, None)
        return
    await _save(ctx, "trial", customer, product, day, None)


@router.route(command(*EVENT, roles=_ROLES), leaves_dialog)
async def log_event(ctx: Context) -> None:
    """``学术 <客户> <活动名> 参会:<人数> [日期]``: created, or said to be already logged; a part missing is asked."""
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
    if bad_day is not None or day is None:
        ctx.reply(ctx.t("activity.bad_day", value=bad_day or ""))
        return
    name = " ".join(words[1:]) or None
    if name is not None and len(name) > svc.EVENT_MAX:
        ctx.reply(ctx.t("activity.too_long", limit=svc.EVENT_MAX))
        return
    customer = await _customer(ctx, EVENT[0], words[0]) if words else None
    if words and customer is None:
        return
    if customer is None or name is None or attendees is None:
        await _ask_rest(ctx, "event", customer, name, day, attendees)
        return
    await _save(ctx, "event", customer, name, day, attendees)


# ---- the dialog: a line missing the hospital, the product / event name or the count is asked for them ------------

FLOW = "activity"


class ActivityState(CustomerFieldState):
    """What is being logged: ``kind`` trial or event, and the parts given so far."""

    kind: str = "trial"
    name: str | None = None
    attendees: int | None = None
    day: date | None = None


def _field_label(name: str) -> tuple[str, str]:
    return i18n.t(i18n.ZH, f"activity.field.{name}"), i18n.t(i18n.EN, f"activity.field.{name}")


async def _parse_customer(d: ActivityDialog, text: str) -> None:
    word = text.strip()
    if not word:
        return
    found = await hospital.match_in_dialog(d, word, "activity.unknown_customer")
    if found is not None:
        d.set("customer", found)


async def _parse_name(d: ActivityDialog, text: str) -> None:
    name = " ".join(text.split())
    limit = svc.PRODUCT_MAX if d.state.kind == "trial" else svc.EVENT_MAX
    if len(name) > limit:
        d.note("activity.too_long", limit=limit)
        return
    d.set("name", name or None)


async def _parse_attendees(d: ActivityDialog, text: str) -> None:
    raw = text.strip()
    m = _ATTENDEES.match(raw)
    count = (m.group(1) if m.group(1) is not None else m.group(2)) if m else raw.removesuffix("人")
    if not re.fullmatch(r"\d{1,6}", count.strip()):
        d.note("activity.bad_attendees", value=raw)
        return
    d.state.attendees = int(count.strip())
    d.changed.append("attendees")


_DIALOG_FORM = Form(
    [
        FieldSpec("customer", *_field_label("customer"), ("医院", "customer"), required=True, parse=_parse_customer),
        FieldSpec(
            "name", *_field_label("name"), ("产品", "活动", "product", "event"), required=True, parse=_parse_name
        ),
        FieldSpec("attendees", *_field_label("attendees"), ("参会", "人数"), parse=_parse_attendees),
    ]
)


class ActivityDialog(DirectFormDialog[ActivityState]):
    """Asks for what the line did not give; saved as soon as nothing is missing (no confirmation card)."""

    flow = FLOW
    ref_prefix = "a"
    choice_payload = ActivityChoice
    confirm_payload = ActivityConfirm

    def build_form(self) -> Form:
        return _DIALOG_FORM

    async def parse_line(self, text: str) -> None:
        head, sep, value = text.replace("：", ":").partition(":")
        key = self.form.key_for(head.strip()) if sep else None
        if key is not None:
            await self.answer(key, value)

    async def tapped(self, key: str, value: str) -> bool:
        if key != "customer":
            return False
        customer_id = parse_id(value)
        customer = await self.ctx.session.get(Customer, customer_id) if customer_id is not None else None
        if customer is None:
            return False
        self.set("customer", (customer.id, customer.name))
        return True

    def missing(self) -> list[str]:
        out = super().missing()
        if self.state.kind == "event" and self.state.attendees is None:
            out.append("attendees")
        return out

    def question(self, key: str, options: Sequence[tuple[str, str]] = ()) -> str:
        if key == "customer" and options:
            return self.ctx.t("activity.choose", text=self.ctx.text.strip() or "")
        return self.ctx.t(f"activity.ask.{self.state.kind}.{key}")

    async def submit(self) -> None:
        ctx, state = self.ctx, self.state
        assert state.customer_id is not None and state.customer_name and state.name and state.day
        self.flush()
        self.finish()
        await _save(ctx, state.kind, (state.customer_id, state.customer_name), state.name, state.day, state.attendees)


async def _save(
    ctx: Context, kind: str, customer: tuple[int, str], name: str, day: date, attendees: int | None
) -> None:
    if kind == "trial":
        done = await svc.log_trial(
            ctx.session,
            customer_id=customer[0],
            product=name,
            day=day,
            actor=ctx.user,
            now=ctx.now,
            channel=ctx.event.channel,
        )
        key = "activity.trial_logged" if done.created else "activity.trial_already"
        ctx.reply(ctx.t(key, customer=customer[1], product=name, day=_label(day)))
        return
    assert attendees is not None
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


async def _ask_rest(
    ctx: Context, kind: str, customer: tuple[int, str] | None, name: str | None, day: date, attendees: int | None
) -> None:
    state = ActivityState(token=ActivityState.new_token(), kind=kind, name=name, day=day, attendees=attendees)
    if customer is not None:
        state.customer_id, state.customer_name = customer
    dialog = ActivityDialog.begin(ctx, state)
    await dialog.start_with("")


@router.route(in_dialog(FLOW))
async def answer_activity(ctx: Context) -> None:
    """A typed answer while the activity dialog asks."""
    dialog = ActivityDialog.resume(ctx)
    if dialog is not None:
        await dialog.on_text()
