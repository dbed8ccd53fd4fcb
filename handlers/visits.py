"""Visit logging: one line or a guided dialog, location evidence, my visits, corrections, admin unlock."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import Field
from sqlalchemy import select

from bot.core.events import LocationShared, TextMessage
from bot.core.routing import Context, Router, command, has_role, is_location
from bot.dialogs.engine import escape_edit, in_dialog, leaves_dialog
from bot.dialogs.form import FieldSpec, Form
from bot.dialogs.hospital import HospitalDialog, HospitalState
from bot.dialogs.state import CustomerRef
from bot.infra import i18n
from bot.parsing.plan_parser import PlanWhen
from bot.parsing.visit_parser import (
    KEY_ALIASES,
    VISIT_FIELDS,
    Objection,
    other_objection,
    parse_field_value,
    parse_visit_line,
)
from bot.services import plans as plan_svc
from bot.services import visits as svc
from bot.services.visits import VisitDraft, VisitError
from cards.model import Card
from cards.tasks import offer_card
from cards.visits import VisitChoice, VisitConfirm, confirm_card
from handlers.plans import span_text
from storage.models import Customer, User, Visit
from storage.vocab import Role

router = Router("visits")

FLOW = "visit"
KEYWORDS = ("拜访", "visit", "记拜访")
MY_VISITS = ("我的拜访", "my visits", "myvisits")
CORRECT = ("修改", "更正", "edit", "correct")
UNLOCK = ("解锁", "unlock")


class VisitState(HospitalState):
    """The visit being logged: the engine's bookkeeping plus the draft's fields."""

    ward: str | None = None
    contacts: list[str] = Field(default_factory=list)
    topics: str | None = None
    products: list[str] = Field(default_factory=list)
    objection: str | None = None
    objection_note: str | None = None
    commitments: str | None = None
    next_step: str | None = None
    attitude: str | None = None
    visited_at: datetime | None = None
    # Some of it was spoken (a voice message's speech recognition): the stored visit is audited as dictated.
    dictated: bool = False

    def get(self, key: str) -> Any:
        return getattr(self, key)

    def put(self, key: str, value: Any) -> None:
        if key == "objection":
            # The note goes with its objection: a new objection (or none) brings its own.
            objection = value if isinstance(value, Objection) else Objection(value) if value else None
            self.objection, self.objection_note = objection if objection is not None else (None, None)
            return
        setattr(self, key, [] if value is None and key in _LISTS else value)

    def draft(self) -> VisitDraft:
        customer = self.customer
        return VisitDraft(
            customer_id=customer.id if customer else None,
            customer_name=customer.name if customer else None,
            ward=self.ward,
            contacts=list(self.contacts),
            topics=self.topics,
            products=list(self.products),
            objection=self.objection,
            objection_note=self.objection_note,
            commitments=self.commitments,
            next_step=self.next_step,
            attitude=self.attitude,
            visited_at=self.visited_at.isoformat() if self.visited_at else None,
        )


_LISTS = ("contacts", "products")


def _label(name: str) -> tuple[str, str]:
    return i18n.t(i18n.ZH, f"field.{name}"), i18n.t(i18n.EN, f"field.{name}")


def _value_parser(name: str) -> Any:
    async def parse(d: VisitDialog, text: str) -> None:
        value, issue = parse_field_value(name, text, d.now_local, d.cfg.objections)
        if issue is not None:
            d.issue(issue.code, issue.value)
            return
        d.set(name, value)

    return parse


async def _parse_customer(d: VisitDialog, text: str) -> None:
    await d.set_customer_text(text)


async def _validate_ward(d: VisitDialog) -> None:
    """The ward must be one of the hospital's (whenever either changes)."""
    customer = await d.customer()
    if customer is None or not d.state.ward:
        return
    ward = svc.match_ward(customer, d.state.ward)
    if ward is None:
        d.note("visit.unknown_ward", customer=customer.name, ward=d.state.ward, wards="、".join(customer.wards or []))
        d.drop("ward")
    elif ward != d.state.ward:
        d.state.ward = ward


async def _validate_contacts(d: VisitDialog) -> None:
    """Contacts known at the hospital given before, and not at this one, are dropped when the hospital changes."""
    if d.previous is None or d.state.customer is None or d.previous.id == d.state.customer.id:
        return
    before = await d.ctx.session.get(Customer, d.previous.id)
    now = await d.customer()
    if before is None or now is None:
        return
    gone = svc.contacts_elsewhere(before, now, d.state.contacts)
    if gone:
        d.note("visit.contacts_not_at", contacts="、".join(gone), customer=now.name)
        d.drop("contacts")


async def _validate_time(d: VisitDialog) -> None:
    when = d.state.visited_at
    if when is None:
        return
    try:
        svc.check_time(when, d.ctx.now, d.cfg, d.tz)
        svc.check_window(when, d.ctx.now, d.cfg, d.tz)
    except VisitError as exc:
        d.drop("visited_at")
        d.note(exc.key, **exc.params)


async def _ward_choices(d: VisitDialog) -> list[tuple[str, str]]:
    customer = await d.customer()
    return [(w, w) for w in (customer.wards or [])] if customer else []


async def _contact_choices(d: VisitDialog) -> list[tuple[str, str]]:
    customer = await d.customer()
    return [(c, c) for c in svc.contacts_for(customer, d.state.ward)] if customer else []


async def _objection_choices(d: VisitDialog) -> list[tuple[str, str]]:
    return [(objection_label(d.ctx, k), k) for k in d.cfg.objections]


def visit_form(required: list[str]) -> Form:
    """The visit's fields: labels from the catalog, aliases from the one-line grammar, one spec for both (built once
    per set of required fields: a dialog is looked at several times per message)."""
    return _visit_form(tuple(required))


@functools.lru_cache(maxsize=8)
def _visit_form(required: tuple[str, ...]) -> Form:
    special: dict[str, dict[str, Any]] = {
        "customer": {"parse": _parse_customer},
        "ward": {"depends_on": ("customer",), "validate": _validate_ward, "choices": _ward_choices},
        "contacts": {"depends_on": ("customer",), "validate": _validate_contacts, "choices": _contact_choices},
        "objection": {"choices": _objection_choices},
        # What managers follow up: asked in a guided visit, skippable.
        "next_step": {"skippable": True},
        "visited_at": {"validate": _validate_time},
    }
    fields = []
    for name in VISIT_FIELDS:
        zh, en = _label(name)
        extra = {"parse": _value_parser(name), **special.get(name, {})}
        required_here = name in required and name != "visited_at"  # the time defaults to now
        fields.append(FieldSpec(name, zh, en, KEY_ALIASES[name], required=required_here, **extra))
    return Form(fields)


class VisitDialog(HospitalDialog[VisitState]):
    """The visit dialog on the engine: what is particular to visits (parsing, rows, location, submit)."""

    flow = FLOW
    ref_prefix = "v"
    choice_payload = VisitChoice
    confirm_payload = VisitConfirm

    def __init__(self, ctx: Context, state: VisitState) -> None:
        self.cfg = ctx.runtime.settings.visits
        self.tz = ctx.runtime.settings.org.tz
        # The hospital before this event changed it (contacts known there are checked against the new one).
        self.previous: CustomerRef | None = state.customer
        super().__init__(ctx, state)

    def build_form(self) -> Form:
        return visit_form(self.cfg.required_fields)

    @property
    def now_local(self) -> datetime:
        return self.ctx.now.astimezone(self.tz)

    # ---- input --------------------------------------------------------------------------------------------

    async def parse_line(self, text: str) -> None:
        """Take every usable field from a line; explain each problem; keep what was valid."""
        parsed = parse_visit_line(text, self.now_local, self.cfg.objections)
        for issue in parsed.issues:
            self.issue(issue.code, issue.value)
        for name in sorted(parsed.present() - {"customer"}, key=VISIT_FIELDS.index):
            value = getattr(parsed, name)
            self.set(name, Objection(value, parsed.objection_note) if name == "objection" else value)
        if parsed.customer:
            await self.set_customer_text(parsed.customer)

    def issue(self, code: str, value: str) -> None:
        if code == "bad_objection":
            self.note("visit.bad_objection", value=value, choices="、".join(self.cfg.objections))
        elif code == "bad_time":
            self.note("visit.bad_time", value=value)
        elif code in ("unknown_key", "empty_value", "duplicate_key"):
            self.note(f"visit.{code}", value=value)

    async def check(self) -> None:
        """Every path into the draft ends here: a value longer than its column is dropped and the rep told."""
        for name, limit in svc.overlong_fields(self.state.draft()):
            self.note("field_too_long", field=self.ctx.t(f"field.{name}"), max=limit)
            self.drop(name)

    def missing(self) -> list[str]:
        return svc.missing_fields(self.state.draft(), self.cfg.required_fields)

    def optional(self) -> list[str]:
        """After the engine's (the next step): what the 其他 objection was, when a guided visit chose it bare."""
        asks = super().optional()
        if self._other_without_note() and "objection" not in self.state.skipped and self.state.hinted:
            asks.insert(0, "objection")
        return asks

    def _other_without_note(self) -> bool:
        other = other_objection(self.cfg.objections)
        return other is not None and self.state.objection == other and not self.state.objection_note

    # ---- output -------------------------------------------------------------------------------------------

    def question(self, key: str, options: Sequence[tuple[str, str]] = ()) -> str:
        if key == "objection" and self._other_without_note():
            label = objection_label(self.ctx, self.state.objection or "")
            return self.ctx.t("visit.ask.objection_note", objection=label)
        return self.ctx.t(f"visit.ask.{key}")

    def shown(self, key: str) -> str:
        if key == "visited_at":
            return i18n.fmt_when(self.state.visited_at, self.tz) if self.state.visited_at else ""
        if key == "objection":
            return objection_shown(self.ctx, self.state.objection, self.state.objection_note)
        return super().shown(key)

    def confirm_card(self, ref: str, rows: Sequence[tuple[str, str]], status: str = "") -> Card:
        return confirm_card(ref, self.state.token, self.ctx.locale, rows, status=status, settled=bool(status))

    async def rows(self) -> list[tuple[str, str]]:
        when = self.state.visited_at or self.ctx.now
        customer = await self.customer()
        loc = await svc.find_location(
            self.ctx.session, self.ctx.user.id, when, timedelta(minutes=self.cfg.location_window_minutes)
        )
        distance = svc.distance_to(customer, loc.latitude, loc.longitude) if loc and customer else None
        return [*self._field_rows(customer, when), location_row(self.ctx, loc is not None, distance)]

    def _field_rows(self, customer: Customer | None, when: datetime) -> list[tuple[str, str]]:
        t, state = self.ctx.t, self.state
        rows = [(t("field.customer"), customer.name if customer else "")]
        for name in VISIT_FIELDS[1:-1]:  # between the customer (above) and the time (below)
            if state.get(name):
                rows.append((t(f"field.{name}"), self.shown(name)))
        rows.append((t("field.visited_at"), i18n.fmt_when(when, self.tz)))
        return rows

    async def submit(self) -> None:
        ctx, settings = self.ctx, self.ctx.runtime.settings
        try:
            visit, customer = await svc.submit(
                ctx.session,
                self.state.draft(),
                ctx.user,
                now=ctx.now,
                cfg=settings.visits,
                tz=settings.org.tz,
                channel=ctx.event.channel,
                dictated=self.state.dictated,
            )
        except VisitError as exc:
            if exc.key in ("visit.future", "visit.too_old"):
                self.state.visited_at = None
                self.save()
            ctx.reply(ctx.t(exc.key, **exc.params))
            return
        no = svc.visit_no(visit.id)
        # The settled card shows what was stored (the location attached now, which the card on screen may not have
        # shown: one shared on another channel), as the reply below does.
        stored = location_row(ctx, visit.location_status == "ok", visit.distance_m)
        await self.settle_confirm(
            ctx.t("visit.submitted_status", no=no), [*self._field_rows(customer, visit.visited_at), stored]
        )
        self.finish()
        saved = _saved_text(ctx, visit, customer, no)
        planned = await plan_svc.completed_by(ctx.session, visit)
        if planned:
            today = plan_svc.local_today(ctx.now, settings.org.tz)
            spans = "、".join(span_text(ctx.locale, PlanWhen(i.period, i.day), today) for i in planned)
            saved += "\n" + ctx.t("plan.visit_done", items=f"{customer.name}（{spans}）")
        ctx.reply(saved)
        en = ctx.locale == i18n.EN
        offers = [
            (key, rt.name_en if en else rt.name_zh)
            for key, rt in settings.request_types.items()
            if rt.offer_after_visit
        ]
        if offers:
            # "需要跟台吗?": one tap starts the request with this visit's hospital and ward, linked to the visit.
            ctx.reply_card(offer_card(f"vo-{self.state.token}", ctx.locale, visit.id, offers))


def objection_label(ctx: Context, canonical: str) -> str:
    """English users see the first ASCII alias (price); the stored value stays canonical (价格)."""
    if ctx.locale != i18n.EN:
        return canonical
    return next((a for a in ctx.runtime.settings.visits.objections.get(canonical, []) if a.isascii()), canonical)


def objection_shown(ctx: Context, objection: str | None, note: str | None) -> str:
    """An objection as the rep reads it on cards, in 我的拜访 and in replies: 其他（医院在走招标流程）."""
    if not objection:
        return ""
    label = objection_label(ctx, objection)
    return ctx.t("visit.objection_with_note", objection=label, note=note) if note else label


def location_row(ctx: Context, located: bool, distance: float | None) -> tuple[str, str]:
    """The card's 定位 row: the distance (one formatter, ``i18n.fmt_distance``, as in every reply), ✓ when the
    hospital has no coordinates, or how long a location may still be shared."""
    t = ctx.t
    if located and distance is not None:
        return t("field.location"), t("visit.location_ok", distance=i18n.fmt_distance(distance, ctx.locale))
    if located:
        return t("field.location"), "✓"
    minutes = ctx.runtime.settings.visits.location_window_minutes
    return t("field.location"), t("visit.location_pending", minutes=minutes)


def _edits_a_visit(rest: str) -> bool:
    """``修改 V12 …`` edits a submitted visit, inside any dialog too."""
    words = rest.split()
    return bool(words) and svc.parse_visit_no(words[0]) is not None


escape_edit(_edits_a_visit)


# ---- routes --------------------------------------------------------------------------------------------------


@router.route(in_dialog(FLOW))
async def answer_visit(ctx: Context) -> None:
    """A typed answer or a `字段:值` correction while the dialog runs (commands of other routes pass by)."""
    dialog = VisitDialog.resume(ctx)
    if dialog is not None:
        if _dictated(ctx):
            dialog.state.dictated = True
        await dialog.on_text()


@router.route(command(*KEYWORDS, roles=(Role.REP,)), leaves_dialog)
async def start_visit(ctx: Context) -> None:
    """`拜访 …`: parse what was given, ask only for what is missing."""
    dialog = VisitDialog.begin(ctx, VisitState(token=VisitState.new_token(), dictated=_dictated(ctx)))
    await dialog.start_with(ctx.args)


def _dictated(ctx: Context) -> bool:
    """The event is a voice message's speech recognition, not typed text."""
    return isinstance(ctx.event, TextMessage) and ctx.event.dictated


def _saved_text(ctx: Context, visit: Visit, customer: Customer, no: str) -> str:
    cfg = ctx.runtime.settings.visits
    if visit.location_status == "ok" and visit.distance_m is not None:
        location = ctx.t("visit.saved.location", distance=i18n.fmt_distance(visit.distance_m, ctx.locale))
        if visit.distance_m > cfg.far_warning_meters:
            location += "\n" + ctx.t(
                "visit.location_far",
                customer=customer.name,
                distance=i18n.fmt_distance(visit.distance_m, ctx.locale),
            )
    elif visit.location_status == "ok":
        location = ""
    else:
        location = ctx.t("visit.saved.no_location", minutes=cfg.location_window_minutes)
    return ctx.t("visit.saved", no=no, customer=customer.name, ward=visit.ward or "", location=location)


@router.route(is_location)
async def share_location(ctx: Context) -> None:
    """A shared location: attach it to a recent visit without one, or keep it for the visit being logged."""
    event = ctx.event
    assert isinstance(event, LocationShared)
    cfg = ctx.runtime.settings.visits
    loc = await svc.record_location(
        ctx.session, ctx.user, event.channel, event.latitude, event.longitude, event.label, ctx.now
    )
    # Inside the visit dialog the visit being logged picks it up on submit.
    attached = None
    if ctx.conversation.flow != FLOW:
        attached = await svc.attach_to_recent(ctx.session, loc, cfg=cfg, now=ctx.now, channel=event.channel)
    if attached is not None:
        ctx.reply(_attached_text(ctx, *attached))
    elif not event.passive:
        ctx.reply(ctx.t("visit.location_kept", minutes=cfg.location_window_minutes))
    if ctx.conversation.flow == FLOW:
        await _show_evidence(ctx)


async def _show_evidence(ctx: Context) -> None:
    """The visit dialog's confirmation card shows the location just shared."""
    dialog = VisitDialog.resume(ctx)
    if dialog is not None and dialog.state.stage == "confirm":
        await dialog.advance()


def _attached_text(ctx: Context, visit: Visit, customer: Customer) -> str:
    no = svc.visit_no(visit.id)
    if visit.distance_m is None:  # the hospital has no coordinates on file: no distance to claim
        return ctx.t("visit.location_attached_no_distance", no=no, customer=customer.name)
    distance = i18n.fmt_distance(visit.distance_m, ctx.locale)
    text = ctx.t("visit.location_attached", no=no, customer=customer.name, distance=distance)
    if visit.distance_m > ctx.runtime.settings.visits.far_warning_meters:
        text += "\n" + ctx.t("visit.location_far", customer=customer.name, distance=distance)
    return text


@router.route(command(*MY_VISITS, roles=(Role.REP,)))
async def my_visits(ctx: Context) -> None:
    """This week's visits of the sender: today's, then the earlier ones; each heading counts what it lists."""
    today, week_start = svc.today_and_week(ctx.now, ctx.runtime.settings.org.tz)
    rows = await svc.list_for(ctx.session, ctx.user.id, week_start)
    if not rows:
        ctx.reply(ctx.t("visit.list_empty"))
        return
    lines: list[str] = []
    for heading, part in zip(("visit.list_today", "visit.list_earlier"), svc.split_week(rows, today), strict=True):
        if part:
            lines.append(ctx.t(heading, count=len(part)))
            lines += [_visit_line(ctx, v, n) for v, n in part]
    ctx.reply("\n".join(lines))


def _visit_line(ctx: Context, v: Visit, name: str) -> str:
    objection = objection_shown(ctx, v.objection, v.objection_note)
    return ctx.t(
        "visit.list_line",
        no=svc.visit_no(v.id),
        when=i18n.fmt_when(v.visited_at, ctx.runtime.settings.org.tz),
        customer=name,
        ward=v.ward or "",
        contacts="、".join(v.contacts or []),
        objection=ctx.t("visit.list_objection", objection=objection) if objection else "",
        flag=ctx.t("visit.flag_no_location") if v.location_status != "ok" else "",
    )


@router.route(command(*CORRECT, roles=(Role.REP,)))
async def correct_visit(ctx: Context) -> None:
    """`修改 V12 下一步:送资料`: edit a submitted visit inside the correction window (audited)."""
    settings = ctx.runtime.settings
    done = await svc.correct_from_text(
        ctx.session,
        ctx.runtime.directory,
        ctx.user,
        ctx.args,
        now=ctx.now,
        cfg=settings.visits,
        tz=settings.org.tz,
        channel=ctx.event.channel,
    )
    if not done.delta:
        ctx.reply(ctx.t("visit.no_change", no=svc.visit_no(done.visit.id)))
        return
    ctx.reply(_corrected_text(ctx, done))


def _corrected_text(ctx: Context, done: svc.Correction) -> str:
    """Each changed field with its new value: 已更正拜访 V1：医院 → 浙江大学医学院附属第二医院；定位 → …"""
    no, name = svc.visit_no(done.visit.id), done.customer.name if done.customer else ""
    fields = dict.fromkeys(_SHOWN_AS.get(k, k) for k in done.delta)
    changes = "；".join(
        ctx.t("visit.changed_to", field=ctx.t(f"field.{f}"), value=_value_of(ctx, done, f)) for f in fields
    )
    lines = [ctx.t("visit.corrected", no=no, changes=changes)]
    if done.far:
        distance = i18n.fmt_distance(done.visit.distance_m or 0, ctx.locale)
        lines.append(ctx.t("visit.location_far", customer=name, distance=distance))
    return "\n".join(lines)


def _value_of(ctx: Context, done: svc.Correction, field: str) -> str:
    """A corrected field's new value as the card shows it."""
    visit = done.visit
    if field == "customer":
        return done.customer.name if done.customer else ""
    if field == "location":
        return location_row(ctx, visit.location_status == "ok", visit.distance_m)[1]
    if field == "objection":
        return objection_shown(ctx, visit.objection, visit.objection_note)
    if field == "visited_at":
        return i18n.fmt_when(visit.visited_at, ctx.runtime.settings.org.tz)
    value = getattr(visit, field)
    return "、".join(value) if isinstance(value, list) else str(value or "")


# Audited columns → the field label shown to the rep.
_SHOWN_AS = {
    "customer_id": "customer",
    "distance_m": "location",
    "location_status": "location",
    "objection_note": "objection",
}


@router.route(command(*UNLOCK, roles=(Role.ADMIN,)), has_role(Role.ADMIN))
async def unlock_visit(ctx: Context) -> None:
    """Admin: reopen a locked visit for correction."""
    visit_id = svc.parse_visit_no(ctx.args)
    if visit_id is None:
        ctx.reply(ctx.t("visit.unlock_usage"))
        return
    visit = await svc.load_visit(ctx.session, visit_id, ctx.args)
    cfg = ctx.runtime.settings.visits
    signed = await svc.unlock(ctx.session, visit, ctx.user, now=ctx.now, cfg=cfg, channel=ctx.event.channel)
    no, tz = svc.visit_no(visit.id), ctx.settings.org.tz
    ctx.reply(ctx.t("visit.unlocked", no=no, hours=cfg.correction_window_hours) + "\n" + signed.line(ctx.locale, tz))
    rep = await ctx.session.scalar(select(User).where(User.id == visit.rep_id))
    if rep is not None and rep.id != ctx.user.id:
        notice = i18n.t(rep.locale, "visit.unlocked_notice", no=no, hours=cfg.correction_window_hours)
        ctx.notify(rep, notice + "\n" + signed.line(rep.locale, tz))


@router.route(command(*UNLOCK, roles=(Role.ADMIN,)))
async def unlock_refused(ctx: Context) -> None:
    ctx.reply(ctx.t("no_permission"))
