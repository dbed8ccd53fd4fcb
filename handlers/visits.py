"""Visit logging: one line or a guided dialog, location evidence, my visits, corrections, admin unlock."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from bot import i18n
from bot.events import LocationShared
from bot.routing import (
    Context,
    Router,
    action,
    command,
    dialog_args,
    has_role,
    in_flow,
    is_location,
    is_text,
    split_command,
)
from bot.services import visits as svc
from bot.services.visit_parser import VISIT_FIELDS, ParsedVisit, parse_field_value, parse_visit_line, resolve_key
from bot.services.visits import VisitDraft, VisitError
from cards.payload import parse_id
from cards.tasks import offer_card
from cards.visits import choice_card, confirm_card, settled_choice
from storage.models import Customer, Location, User, Visit

router = Router("visits")

FLOW = "visit"
KEYWORDS = ("拜访", "visit", "记拜访")
MY_VISITS = ("我的拜访", "my visits", "myvisits")
CORRECT = ("修改", "更正", "edit", "correct")
UNLOCK = ("解锁", "unlock")


class Dialog:
    """The visit dialog's state inside ``ctx.conversation.data``, with the replies it collects for one event."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        data = ctx.conversation.data
        self.data = data
        self.draft = VisitDraft.from_json(data.get("draft", {}))
        self.notes: list[str] = []
        self.cfg = ctx.runtime.settings.visits
        self.tz = ctx.runtime.settings.org.tz

    @classmethod
    def begin(cls, ctx: Context) -> Dialog:
        ctx.conversation.start(FLOW, {"token": secrets.token_hex(4), "draft": {}, "stage": "collect", "seq": 0})
        return cls(ctx)

    @property
    def token(self) -> str:
        return str(self.data["token"])

    @property
    def now_local(self) -> datetime:
        return self.ctx.now.astimezone(self.tz)

    def save(self) -> None:
        self.data["draft"] = self.draft.to_json()

    def note(self, key: str, **params: Any) -> None:
        self.notes.append(self.ctx.t(key, **params))

    def flush_notes(self) -> None:
        if self.notes:
            self.ctx.reply("\n".join(self.notes))
            self.notes = []

    # ---- input --------------------------------------------------------------------------------------------

    async def merge(self, parsed: ParsedVisit) -> None:
        """Take every usable field from a parsed line; explain each problem; keep what was valid."""
        for issue in parsed.issues:
            self._issue(issue.code, issue.value)
        svc.apply_parsed(self.draft, parsed)
        if parsed.customer:
            await self.set_customer_text(parsed.customer)
        self._validate_time()

    def _issue(self, code: str, value: str) -> None:
        if code == "bad_objection":
            self.note("visit.bad_objection", value=value, choices="、".join(self.cfg.objections))
        elif code == "bad_time":
            self.note("visit.bad_time", value=value)
        elif code in ("unknown_key", "empty_value", "duplicate_key"):
            self.note(f"visit.{code}", value=value)

    async def set_customer_text(self, text: str) -> None:
        matcher = await self.ctx.runtime.directory.matcher(self.ctx.session)
        result = matcher.match(text)
        if result.best is not None:
            self.draft.customer_id, self.draft.customer_name = result.best.id, result.best.name
            return
        self.draft.customer_id = self.draft.customer_name = None
        if result.status == "ambiguous":
            self.data["pending_choice"] = "customer"
            self.note("visit.choose_customer", text=text)
            self.data["customer_options"] = [[c.entry.name, str(c.entry.id)] for c in result.candidates]
            return
        names = "、".join(c.entry.name for c in result.candidates)
        suggest = self.ctx.t("visit.suggest", names=names) if names else ""
        self.note("visit.unknown_customer", text=text, suggest=suggest)
        self.data["customer_options"] = [[c.entry.name, str(c.entry.id)] for c in result.candidates]

    async def customer(self) -> Customer | None:
        if self.draft.customer_id is None:
            return None
        return await self.ctx.session.get(Customer, self.draft.customer_id)

    def _validate_time(self) -> None:
        when = self.draft.when
        if when is None:
            return
        try:
            svc.check_time(when, self.ctx.now, self.cfg, self.tz)
        except VisitError as exc:
            self.draft.visited_at = None
            self.note(exc.key, **exc.params)

    async def _check_ward(self, customer: Customer) -> None:
        if not self.draft.ward:
            return
        ward = svc.match_ward(customer, self.draft.ward)
        if ward is None:
            self.note(
                "visit.unknown_ward",
                customer=customer.name,
                ward=self.draft.ward,
                wards="、".join(customer.wards or []),
            )
        self.draft.ward = ward

    def _check_lengths(self) -> None:
        """Every path into the draft ends here: a value longer than its column is dropped and the rep told."""
        for name, limit in svc.overlong_fields(self.draft):
            self.note("field_too_long", field=self.ctx.t(f"field.{name}"), max=limit)
            setattr(self.draft, name, None)

    async def answer(self, field: str, text: str) -> None:
        """The rep's typed answer to the question about ``field``."""
        if field == "customer":
            await self.set_customer_text(text)
            return
        value, issue = parse_field_value(field, text, self.now_local, self.cfg.objections)
        if issue is not None:
            self._issue(issue.code, issue.value)
            return
        if isinstance(value, datetime):
            self.draft.visited_at = value.isoformat()
            self._validate_time()
        else:
            setattr(self.draft, field, value)

    # ---- output -------------------------------------------------------------------------------------------

    def _next_ref(self, kind: str) -> str:
        self.data["seq"] = int(self.data.get("seq", 0)) + 1
        return f"v{kind}-{self.token}-{self.data['seq']}"

    def settle_question(self, answer: str) -> None:
        """Turn the open choice card (if any) into its answered form, so its buttons cannot be tapped again."""
        ref = self.data.pop("ask_ref", None)
        if ref:
            self.ctx.update_card(settled_choice(ref, str(self.data.get("ask_title", "")), answer))

    async def advance(self) -> None:
        """Ask for the next missing field, or show the confirmation card when nothing is missing."""
        customer = await self.customer()
        if customer is not None:
            await self._check_ward(customer)
        self._check_lengths()
        self.save()
        options = self.data.pop("customer_options", None)
        if self.draft.customer_id is None and options:
            self._ask("customer", self.ctx.t("visit.ask.customer"), [(n, v) for n, v in options])
            return
        missing = svc.missing_fields(self.draft, self.cfg.required_fields)
        if missing:
            field = missing[0]
            self._ask(field, self.ctx.t(f"visit.ask.{field}"), self._options(field, customer))
            return
        self.data["stage"] = "confirm"
        self.data.pop("awaiting", None)
        self.flush_notes()
        ref = self.data.get("confirm_ref") or self._next_ref("c")
        card = confirm_card(ref, self.token, self.ctx.locale, await self.rows(customer))
        if self.data.get("confirm_ref"):
            # Refresh the card already on screen rather than stacking a second one.
            self.ctx.update_card(card)
        else:
            self.data["confirm_ref"] = ref
            self.ctx.reply_card(card)

    def _options(self, field: str, customer: Customer | None) -> list[tuple[str, str]]:
        if field == "objection":
            return [(self._objection_label(k), k) for k in self.cfg.objections]
        if customer is None:
            return []
        if field == "ward":
            return [(w, w) for w in customer.wards or []]
        if field == "contacts":
            return [(c, c) for c in svc.contacts_for(customer, self.draft.ward)]
        return []

    def _objection_label(self, canonical: str) -> str:
        """English users see the first ASCII alias (price); the stored value stays canonical (价格)."""
        if self.ctx.locale != i18n.EN:
            return canonical
        return next((a for a in self.cfg.objections[canonical] if a.isascii()), canonical)

    def _ask(self, field: str, question: str, options: list[tuple[str, str]]) -> None:
        self.data["stage"] = "collect"
        self.data["awaiting"] = field
        if not self.data.get("hinted"):
            self.data["hinted"] = True
            question = f"{question}\n{self.ctx.t('visit.ask.hint')}"
        if options:
            self.flush_notes()
            ref = self._next_ref("q")
            self.data["ask_ref"], self.data["ask_title"] = ref, question
            self.ctx.reply_card(choice_card(ref, self.token, field, question, options))
        else:
            self.notes.append(question)
            self.flush_notes()

    async def rows(self, customer: Customer | None) -> list[tuple[str, str]]:
        d, t = self.draft, self.ctx.t
        when = d.when or self.ctx.now
        rows = [(t("field.customer"), customer.name if customer else "")]
        for name in VISIT_FIELDS[1:-1]:  # between the customer (above) and the time (below)
            value = getattr(d, name)
            if value:
                rows.append((t(f"field.{name}"), "、".join(value) if isinstance(value, list) else str(value)))
        rows.append((t("field.visited_at"), i18n.fmt_when(when, self.tz)))
        loc = await svc.find_location(
            self.ctx.session, self.ctx.user.id, when, timedelta(minutes=self.cfg.location_window_minutes)
        )
        if loc is not None and customer is not None and customer.latitude is not None:
            distance = svc.haversine_m(loc.latitude, loc.longitude, customer.latitude, customer.longitude or 0)
            rows.append(
                (
                    t("field.location"),
                    t("visit.location_ok", distance=i18n.fmt_distance(distance, self.ctx.locale)),
                )
            )
        elif loc is not None:
            rows.append((t("field.location"), "✓"))
        else:
            rows.append((t("field.location"), t("visit.location_pending", minutes=self.cfg.location_window_minutes)))
        return rows


def _looks_like_pairs(text: str) -> bool:
    """True when the text carries at least one known ``key:value`` pair (a correction inside the dialog)."""
    norm = text.replace("：", ":")
    head = norm.split(":", 1)[0].strip()
    return ":" in norm and resolve_key(head.split()[-1] if head.split() else head) is not None


def _not_visit_command(ctx: Context) -> bool:
    """False for the commands on submitted visits (我的拜访, 修改 V12 …, 解锁 …): they work inside a dialog too."""
    text = ctx.text
    if split_command(text, MY_VISITS) is not None or split_command(text, UNLOCK) is not None:
        return False
    edit = split_command(text, CORRECT)
    return edit is None or svc.parse_visit_no(edit.split(" ", 1)[0]) is None


# ---- routes --------------------------------------------------------------------------------------------------


@router.route(command(*KEYWORDS))
async def start_visit(ctx: Context) -> None:
    """`拜访 …`: parse what was given, ask only for what is missing."""
    dialog = Dialog.begin(ctx)
    if ctx.args:
        tz = ctx.runtime.settings.org.tz
        parsed = parse_visit_line(ctx.args, ctx.now.astimezone(tz), ctx.runtime.settings.visits.objections)
        await dialog.merge(parsed)
    await dialog.advance()


@router.route(in_flow(FLOW), is_text, _not_visit_command)
async def answer_visit(ctx: Context) -> None:
    """A typed answer or a `字段:值` correction while the dialog runs."""
    dialog = Dialog(ctx)
    text = ctx.text.strip()
    edit = split_command(text, CORRECT)
    if edit is not None:
        # "修改 科室:检验科" corrects the draft; the keyword is not a hospital or an answer.
        if not _looks_like_pairs(edit):
            ctx.reply(ctx.t("visit.edit_hint"))
            return
        text = edit
    if _looks_like_pairs(text):
        tz = ctx.runtime.settings.org.tz
        parsed = parse_visit_line(text, ctx.now.astimezone(tz), ctx.runtime.settings.visits.objections)
        await dialog.merge(parsed)
        dialog.settle_question(text)
    elif dialog.data.get("stage") == "confirm":
        ctx.reply(ctx.t("visit.edit_hint"))
        return
    else:
        field = str(dialog.data.get("awaiting") or "customer")
        await dialog.answer(field, text)
        dialog.settle_question(text)
    await dialog.advance()


@router.route(action("vf"))
async def choose_value(ctx: Context) -> None:
    """A tap on a choice button: (token, field, value)."""
    args = dialog_args(ctx, FLOW, 3)
    if args is None:
        ctx.reply(ctx.t("stale_button"))
        return
    dialog = Dialog(ctx)
    field, value = args
    if field == "customer":
        customer_id = parse_id(value)
        customer = await ctx.session.get(Customer, customer_id) if customer_id is not None else None
        if customer is None:
            ctx.reply(ctx.t("stale_button"))
            return
        dialog.draft.customer_id, dialog.draft.customer_name = customer.id, customer.name
        dialog.settle_question(customer.name)
    else:
        await dialog.answer(field, value)
        dialog.settle_question(value)
    await dialog.advance()


@router.route(action("vc"))
async def confirm_visit(ctx: Context) -> None:
    """提交 / 修改 / 取消 on the confirmation card."""
    args = dialog_args(ctx, FLOW, 2, needs="confirm_ref")
    if args is None:
        ctx.reply(ctx.t("stale_button"))
        return
    conv = ctx.conversation
    dialog = Dialog(ctx)
    op = args[0]
    customer = await dialog.customer()
    ref = str(conv.data["confirm_ref"])
    if op == "edit":
        ctx.reply(ctx.t("visit.edit_hint"))
        return
    if op == "cancel":
        rows = await dialog.rows(customer)
        ctx.update_card(
            confirm_card(ref, dialog.token, ctx.locale, rows, status=ctx.t("visit.cancelled_status"), settled=True)
        )
        conv.clear()
        ctx.reply(ctx.t("cancelled"))
        return
    if op != "submit":
        ctx.reply(ctx.t("stale_button"))
        return
    settings = ctx.runtime.settings
    try:
        visit, customer = await svc.submit(
            ctx.session,
            dialog.draft,
            ctx.user,
            now=ctx.now,
            cfg=settings.visits,
            tz=settings.org.tz,
            channel=ctx.event.channel,
        )
    except VisitError as exc:
        if exc.key == "visit.future" or exc.key == "visit.too_old":
            dialog.draft.visited_at = None
            dialog.save()
        ctx.reply(ctx.t(exc.key, **exc.params))
        return
    no = svc.visit_no(visit.id)
    rows = await dialog.rows(customer)
    ctx.update_card(
        confirm_card(ref, dialog.token, ctx.locale, rows, status=ctx.t("visit.submitted_status", no=no), settled=True)
    )
    conv.clear()
    ctx.reply(_saved_text(ctx, visit, customer, no))
    en = ctx.locale == i18n.EN
    offers = [
        (key, rt.name_en if en else rt.name_zh) for key, rt in settings.request_types.items() if rt.offer_after_visit
    ]
    if offers:
        # "需要跟台吗?": one tap starts the request with this visit's hospital and ward, linked to the visit.
        ctx.reply_card(offer_card(f"vo-{dialog.token}", ctx.locale, visit.id, offers))


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
    loc = Location(
        user_id=ctx.user.id,
        channel=event.channel,
        latitude=event.latitude,
        longitude=event.longitude,
        label=event.label[:200],
        shared_at=ctx.now,
    )
    ctx.session.add(loc)
    await ctx.session.flush()
    if ctx.conversation.flow == FLOW:
        # The visit being logged will pick it up on submit; refresh its card to show the evidence.
        dialog = Dialog(ctx)
        if not event.passive:
            ctx.reply(ctx.t("visit.location_kept", minutes=cfg.location_window_minutes))
        if dialog.data.get("stage") == "confirm":
            await dialog.advance()
        return
    attached = await svc.attach_to_recent(ctx.session, loc, cfg=cfg, now=ctx.now, channel=event.channel)
    if attached is None:
        if not event.passive:
            ctx.reply(ctx.t("visit.location_kept", minutes=cfg.location_window_minutes))
        return
    visit, customer = attached
    distance = i18n.fmt_distance(visit.distance_m or 0, ctx.locale)
    text = ctx.t("visit.location_attached", no=svc.visit_no(visit.id), customer=customer.name, distance=distance)
    if (visit.distance_m or 0) > cfg.far_warning_meters:
        text += "\n" + ctx.t("visit.location_far", customer=customer.name, distance=distance)
    ctx.reply(text)


@router.route(command(*MY_VISITS))
async def my_visits(ctx: Context) -> None:
    """Today's and this week's visits of the sender."""
    tz = ctx.runtime.settings.org.tz
    local = ctx.now.astimezone(tz)
    today = local.replace(hour=0, minute=0, second=0, microsecond=0)
    week_start = today - timedelta(days=today.weekday())
    rows = await svc.list_for(ctx.session, ctx.user.id, week_start)
    if not rows:
        ctx.reply(ctx.t("visit.list_empty"))
        return

    def line(v: Visit, name: str) -> str:
        flag = ctx.t("visit.flag_no_location") if v.location_status != "ok" else ""
        return ctx.t(
            "visit.list_line",
            no=svc.visit_no(v.id),
            when=i18n.fmt_when(v.visited_at, tz),
            customer=name,
            ward=v.ward or "",
            contacts="、".join(v.contacts or []),
            flag=flag,
        )

    todays = [(v, n) for v, n in rows if v.visited_at >= today]
    lines = [ctx.t("visit.list_today", count=len(todays)), *(line(v, n) for v, n in todays)]
    lines += [
        ctx.t("visit.list_week", count=len(rows)),
        *(line(v, n) for v, n in rows if v.visited_at < today),
    ]
    ctx.reply("\n".join(lines))


@router.route(command(*CORRECT))
async def correct_visit(ctx: Context) -> None:
    """`修改 V12 下一步:送资料`: edit a submitted visit inside the correction window (audited)."""
    no_text, _, rest = ctx.args.partition(" ")
    visit_id = svc.parse_visit_no(no_text)
    if visit_id is None or not rest.strip():
        ctx.reply(ctx.t("visit.correct_usage"))
        return
    visit = await ctx.session.get(Visit, visit_id, with_for_update=True)
    if visit is None:
        ctx.reply(ctx.t("visit.not_found", no=no_text))
        return
    settings = ctx.runtime.settings
    try:
        svc.may_correct(visit, ctx.user, ctx.now, settings.visits)
        changes = await _corrections(ctx, visit, rest)
    except VisitError as exc:
        ctx.reply(ctx.t(exc.key, **exc.params))
        return
    no = svc.visit_no(visit.id)
    delta = await svc.correct(ctx.session, visit, changes, ctx.user, now=ctx.now, channel=ctx.event.channel)
    if not delta:
        ctx.reply(ctx.t("visit.no_change", no=no))
        return
    shown = "；".join(dict.fromkeys(ctx.t("field." + _SHOWN_AS.get(k, k)) for k in delta))
    text = ctx.t("visit.corrected", no=no, changes=shown)
    if "distance_m" in delta and (visit.distance_m or 0) > settings.visits.far_warning_meters:
        customer = await ctx.session.get(Customer, visit.customer_id)
        distance = i18n.fmt_distance(visit.distance_m or 0, ctx.locale)
        text += "\n" + ctx.t("visit.location_far", customer=customer.name if customer else "", distance=distance)
    ctx.reply(text)


# Audited columns → the field label shown to the rep.
_SHOWN_AS = {"customer_id": "customer", "distance_m": "location", "location_status": "location"}


async def _corrections(ctx: Context, visit: Visit, text: str) -> dict[str, Any]:
    """Validated column changes from `字段:值` pairs; raises VisitError on the first problem."""
    settings = ctx.runtime.settings
    tz = settings.org.tz
    parsed = parse_visit_line(text, ctx.now.astimezone(tz), settings.visits.objections)
    for issue in parsed.issues:
        if issue.code == "bad_objection":
            raise VisitError("visit.bad_objection", value=issue.value, choices="、".join(settings.visits.objections))
        if issue.code in ("bad_time", "unknown_key", "empty_value"):
            raise VisitError(f"visit.{issue.code}", value=issue.value)
    draft = VisitDraft()
    present = svc.apply_parsed(draft, parsed)
    changes: dict[str, Any] = {name: getattr(draft, name) for name in present if name != "visited_at"}
    customer = await ctx.session.get(Customer, visit.customer_id)
    if parsed.customer:
        match = (await ctx.runtime.directory.matcher(ctx.session)).match(parsed.customer)
        if match.best is None:
            names = "、".join(c.entry.name for c in match.candidates)
            suggest = ctx.t("visit.suggest", names=names) if names else ""
            raise VisitError("visit.unknown_customer", text=parsed.customer, suggest=suggest)
        changes["customer_id"] = match.best.id
        customer = await ctx.session.get(Customer, match.best.id)
        if "ward" not in changes and visit.ward:
            changes["ward"] = visit.ward  # the ward on file must exist at the new customer too
    if "ward" in changes and customer is not None:
        ward = svc.match_ward(customer, changes["ward"])
        if ward is None:
            raise VisitError(
                "visit.unknown_ward",
                customer=customer.name,
                ward=changes["ward"],
                wards="、".join(customer.wards or []),
            )
        changes["ward"] = ward
    if parsed.visited_at is not None:
        svc.check_time(parsed.visited_at, ctx.now, settings.visits, tz)
        changes["visited_at"] = parsed.visited_at
    probe = VisitDraft(**{k: v for k, v in changes.items() if k in VisitDraft.__dataclass_fields__})
    for name, limit in svc.overlong_fields(probe):
        raise VisitError("field_too_long", field=ctx.t(f"field.{name}"), max=limit)
    if not changes:
        raise VisitError("visit.correct_usage")
    return changes


@router.route(command(*UNLOCK), has_role("admin"))
async def unlock_visit(ctx: Context) -> None:
    """Admin: reopen a locked visit for correction."""
    visit_id = svc.parse_visit_no(ctx.args)
    if visit_id is None:
        ctx.reply(ctx.t("visit.unlock_usage"))
        return
    visit = await ctx.session.get(Visit, visit_id, with_for_update=True)
    if visit is None:
        ctx.reply(ctx.t("visit.not_found", no=ctx.args))
        return
    cfg = ctx.runtime.settings.visits
    await svc.unlock(ctx.session, visit, ctx.user, now=ctx.now, cfg=cfg, channel=ctx.event.channel)
    no = svc.visit_no(visit.id)
    ctx.reply(ctx.t("visit.unlocked", no=no, hours=cfg.correction_window_hours))
    rep = await ctx.session.scalar(select(User).where(User.id == visit.rep_id))
    if rep is not None and rep.id != ctx.user.id:
        ctx.notify(rep, i18n.t(rep.locale, "visit.unlocked_notice", no=no, hours=cfg.correction_window_hours))


@router.route(command(*UNLOCK))
async def unlock_refused(ctx: Context) -> None:
    ctx.reply(ctx.t("no_permission"))
