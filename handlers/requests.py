"""Support requests (rep side) and department task cards (claim / done / reject / need info, attachments)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field, ValidationError

from bot.config import RequestFieldConfig, RequestTypeConfig
from bot.core.events import CardAction, MediaMessage
from bot.core.intents import SendCard, SendMedia, UpdateCard
from bot.core.routing import Context, Router, command, in_flow, is_media, is_text, split_command
from bot.dialogs.engine import in_dialog, leaves_dialog
from bot.dialogs.form import FieldSpec, Form
from bot.dialogs.hospital import HospitalDialog, HospitalState
from bot.dialogs.state import CustomerRef
from bot.infra import i18n
from bot.parsing.request_parser import RequestIssue, field_by_key, parse_request_line, parse_value, place_loose
from bot.services import escalation, recipients, signatures
from bot.services import requests as svc
from bot.services.requests import RequestError
from bot.services.signatures import COMPLIANCE
from bot.services.visits import match_ward
from cards.escalation import settled_escalation
from cards.model import Card
from cards.tasks import (
    CLAIM,
    DONE,
    INFO,
    REJECT,
    RequestChoice,
    RequestConfirm,
    RequestOffer,
    Resubmit,
    TaskTap,
    rejection_notice,
    request_confirm_card,
    settled_offer,
)
from handlers import help
from storage.limits import max_length
from storage.models import Customer, SupportRequest, TaskCard, User, Visit
from storage.vocab import CARD_ENTITY, CardEvent, Role

log = logging.getLogger(__name__)
_M = TypeVar("_M", bound=BaseModel)

router = Router("requests")
# After the visit dialog: a plain text from a rep with one open question is the answer to it.
late_router = Router("requests_late")

FLOW = "request"
INPUT_FLOW = "task_input"
# After 完成 on an approval that needs a second factor: the one-time code is awaited (docs/compliance.md).
APPROVE_FLOW = "task_approve"
CONFIRM_WORDS = ("确认", "confirm")
ATTACH_FLOW = "task_attach"
MY_REQUESTS = ("我的申请", "my requests", "myrequests")
PROGRESS = ("进度", "progress", "status")
ANSWER = ("补充", "reply")
ATTACH = ("附件", "attach")
RESUBMIT = ("重新提交", "resubmit")
LIST_DAYS = 14
# Attachments passed on to the rep when a card is done (the notice counts them all).
MAX_FORWARDED = 3


# ---- helpers -------------------------------------------------------------------------------------------------


def type_for_text(ctx: Context) -> tuple[str, str] | None:
    """(request type key, text after its keyword) when the text starts with a request keyword."""
    best: tuple[int, str, str] | None = None
    for key, rt in ctx.runtime.settings.request_types.items():
        for word in rt.keywords:
            rest = split_command(ctx.text, [word])
            if rest is not None and (best is None or len(word) > best[0]):
                best = (len(word), key, rest)
    return (best[1], best[2]) if best else None


def is_request_command(ctx: Context) -> bool:
    return bool(ctx.text) and type_for_text(ctx) is not None


def _department_name(ctx: Context, department: str, locale: str | None = None) -> str:
    return recipients.department_name(ctx.runtime.settings, department, locale or ctx.locale)


def _notify(ctx: Context, user: User, key: str, **params: Any) -> None:
    ctx.intents.append(recipients.text_to(ctx.runtime.channel_for, user, ctx.event.channel, key, **params))


async def say_error(ctx: Context, exc: RequestError) -> None:
    ctx.reply(await ctx.error_text(exc))


def _fmt(ctx: Context, when: datetime) -> str:
    return i18n.fmt_when(when, ctx.runtime.settings.org.tz)


# ---- the department side's two short flows, typed ------------------------------------------------------------


class ApproveState(BaseModel):
    """The code sent for an approval: its digest (never the code), until when it is valid, attempts so far."""

    card_id: int
    digest: str
    expires: str
    tries: int = 0


class TaskInputState(BaseModel):
    """After 驳回 / 需补充: the next text is the reason or the question; then the card is updated in place."""

    card_id: int
    op: Literal["reject", "info"]


class PendingMedia(BaseModel):
    kind: str
    media_id: str


class AttachState(BaseModel):
    """``附件 T12`` (the next file goes to that card) or files sent while holding several cards."""

    card_id: int | None = None
    pending_media: list[PendingMedia] = Field(default_factory=list)


def _short_flow(ctx: Context, flow: str, model: type[_M]) -> _M | None:
    """The state of one of the short flows, or None (not in it, or stored in a shape that no longer loads)."""
    if ctx.conversation.flow != flow:
        return None
    try:
        return model.model_validate(ctx.conversation.data)
    except ValidationError:
        return None


# ---- task cards: rendering and fan-out -----------------------------------------------------------------------


async def send_task_card(ctx: Context, card: TaskCard, request: SupportRequest) -> None:
    """One shared card per channel for all of the department's people (one message per channel, so one update
    reaches every copy)."""
    await _task_card_out(ctx, card, first=True, request=request)


async def refresh_task_card(ctx: Context, card: TaskCard) -> None:
    """Update every recipient's copy in place (each channel knows how: see ``UpdateCard``)."""
    if card.state in svc.CLOSED and card.notices:
        await _settle_notices(ctx, card)
    await _task_card_out(ctx, card, first=False)


async def _task_card_out(ctx: Context, card: TaskCard, *, first: bool, request: SupportRequest | None = None) -> None:
    """The card to its recipients on their channels (``first``: the shared send, else an update of every copy)."""
    ctx.intents += await recipients.task_card_intents(
        ctx.session,
        ctx.runtime.settings,
        ctx.runtime.channel_for,
        card,
        first=first,
        fallback=ctx.event.channel,
        request=request,
    )


async def _settle_notices(ctx: Context, card: TaskCard) -> None:
    """The card is closed: its escalation notices lose their buttons and say so, for everyone who got one."""
    names = await recipients.names(ctx.session, {card.holder_id or ""})
    locale = recipients.org_locale(ctx.runtime.settings)
    when = _fmt(ctx, card.closed_at or ctx.now)
    status = i18n.t(locale, f"task.status.{card.state}", holder=names.get(card.holder_id or "", ""), when=when)
    title = i18n.t(locale, "esc.settled_title") + f"｜{card.title}"
    for ref, targets in escalation.sent_notices(card):
        settled = settled_escalation(ref, title, status)
        for channel, ids in (
            await recipients.by_channel(ctx.session, ctx.runtime.channel_for, targets, ctx.event.channel)
        ).items():
            ctx.intents.append(UpdateCard(channel=channel, user_ids=tuple(ids), card=settled))


# ---- the rep's request dialog ---------------------------------------------------------------------------------


class RequestState(HospitalState):
    """The request being raised: its type, the visit it follows (if any), the hospital and the other values."""

    type_key: str
    visit_id: int | None = None
    values: dict[str, str] = Field(default_factory=dict)

    def get(self, key: str) -> Any:
        return self.customer if key == "customer" else self.values.get(key)

    def put(self, key: str, value: Any) -> None:
        if key == "customer":
            self.customer = value
        elif value is None:
            self.values.pop(key, None)
        else:
            self.values[key] = str(value)


def _typed_parser(f: RequestFieldConfig) -> Any:
    async def parse(d: RequestDialog, text: str) -> None:
        value, issue = parse_value(f, text, d.today)
        if issue is not None:
            d.issue(issue)
        elif value is not None:
            d.set(f.key, value)

    return parse


async def _parse_customer(d: RequestDialog, text: str) -> None:
    await d.set_customer_text(text)


async def _parse_ward(d: RequestDialog, text: str) -> None:
    d.set("ward", " ".join(text.split()))


async def _validate_ward(d: RequestDialog) -> None:
    """Every path that sets the ward, and every change of the hospital, ends here."""
    ward = str(d.state.values.get("ward") or "")
    limit = max_length(SupportRequest, "ward") or 0
    if len(ward.strip()) > limit:
        d.drop("ward")
        d.note("field_too_long", field=d.ctx.t("field.ward"), max=limit)
        return
    customer = await d.customer()
    if customer is None:
        return
    matched = match_ward(customer, ward)
    if matched is None:
        d.drop("ward")
        d.note("visit.unknown_ward", customer=customer.name, ward=ward, wards="、".join(customer.wards or []))
    elif matched != ward:
        d.state.values["ward"] = matched


async def _ward_choices(d: RequestDialog) -> list[tuple[str, str]]:
    customer = await d.customer()
    return [(w, w) for w in customer.wards or []] if customer is not None else []


def _static_choices(f: RequestFieldConfig) -> Any:
    async def choices(d: RequestDialog) -> list[tuple[str, str]]:
        return [(c, c) for c in f.choices]

    return choices


def request_form(rt: RequestTypeConfig) -> Form:
    """A request type's fields from config: its labels, aliases and key are the words a correction may use."""
    specs = []
    for f in rt.fields:
        extra: dict[str, Any] = {"parse": _typed_parser(f)}
        if f.type == "customer":
            extra = {"parse": _parse_customer}
        elif f.type == "ward":
            extra = {"parse": _parse_ward, "depends_on": ("customer",), "validate": _validate_ward}
            extra["choices"] = _ward_choices
        elif f.type == "choice":
            extra["choices"] = _static_choices(f)
        specs.append(FieldSpec(f.key, f.label_zh, f.label_en, tuple(f.aliases), required=f.required, **extra))
    return Form(specs)


class RequestDialog(HospitalDialog[RequestState]):
    """The rep's request dialog on the engine: parsing, the card and submit are particular to requests."""

    flow = FLOW
    ref_prefix = "r"
    choice_payload = RequestChoice
    confirm_payload = RequestConfirm

    @property
    def rt(self) -> RequestTypeConfig:
        return self.ctx.runtime.settings.request_types[self.state.type_key]

    def build_form(self) -> Form:
        return request_form(self.rt)

    @property
    def today(self) -> date:
        return self.ctx.now.astimezone(self.ctx.runtime.settings.org.tz).date()

    def issue(self, issue: RequestIssue) -> None:
        f = field_by_key(self.rt, issue.field) if issue.field else None
        label = recipients.field_label(self.ctx.locale, f) if f else ""
        if issue.code == "unknown_key":
            keys = "、".join(recipients.field_label(self.ctx.locale, f) for f in self.rt.fields)
            self.note("request.unknown_key", value=issue.value, keys=keys)
        elif issue.code == "bad_choice" and f is not None:
            self.note("request.bad_choice", value=issue.value, choices="、".join(f.choices))
        else:
            self.note(f"request.{issue.code}", field=label, value=issue.value, today=issue.today)

    async def parse_line(self, text: str) -> None:
        parsed = parse_request_line(self.rt, text, self.today)
        for issue in parsed.issues:
            self.issue(issue)
        if "customer" in parsed.values:
            await self.set_customer_text(parsed.values.pop("customer"))
        customer = await self.customer()
        for issue in place_loose(self.rt, parsed, list(customer.wards or []) if customer else None, self.today):
            self.issue(issue)
        for key, value in parsed.values.items():
            self.set(key, value)

    def question(self, key: str, options: Sequence[tuple[str, str]] = ()) -> str:
        f = field_by_key(self.rt, key)
        assert f is not None
        label = recipients.field_label(self.ctx.locale, f)
        if f.type == "choice" or (f.type == "ward" and options):
            return self.ctx.t("request.ask.choice", label=label)
        if f.type == "date":
            return self.ctx.t("request.ask.date", label=label)
        return self.ctx.t("request.ask", label=label)

    async def rows(self) -> list[tuple[str, str]]:
        customer = self.state.customer
        return recipients.field_rows(self.rt, self.state.values, customer.name if customer else "", self.ctx.locale)

    def confirm_card(self, ref: str, rows: Sequence[tuple[str, str]], status: str = "") -> Card:
        name = recipients.type_name(self.ctx.locale, self.rt)
        return request_confirm_card(ref, self.state.token, self.ctx.locale, name, rows, status=status)

    async def submit(self) -> None:
        ctx, rt = self.ctx, self.rt
        customer = await self.customer()
        if customer is None:
            ctx.reply(ctx.t("stale_button"))
            return
        # Dates are checked again on submit: a draft left overnight may have a date that is now in the past.
        for f in rt.fields:
            if f.type == "date" and self.state.values.get(f.key):
                _, issue = parse_value(f, str(self.state.values[f.key]), self.today)
                if issue is not None:
                    self.drop(f.key)
                    self.issue(issue)
                    self.changed = []
                    await self.settle_confirm("✗")
                    await self.advance()
                    return
        settings = ctx.runtime.settings
        request, cards = await svc.create(
            ctx.session,
            settings=settings,
            type_key=self.state.type_key,
            values=dict(self.state.values),
            customer=customer,
            rep=ctx.user,
            visit_id=self.state.visit_id,
            now=ctx.now,
            channel=ctx.event.channel,
        )
        no = svc.request_no(request.id)
        name = recipients.type_name(ctx.locale, rt)
        await self.settle_confirm(ctx.t("request.submitted_status", no=no))
        self.finish()
        departments = "、".join(_department_name(ctx, c.department) for c, _ in cards)
        needed = _needed_words(ctx, rt, request)
        ctx.reply(
            ctx.t(
                "request.submitted",
                no=no,
                type_name=name,
                customer=customer.name,
                departments=departments,
                needed=needed,
            )
        )
        for card, people in cards:
            if not people:
                ctx.reply(ctx.t("request.no_recipients", department=_department_name(ctx, card.department)))
                continue
            await send_task_card(ctx, card, request)


def _needed_words(ctx: Context, rt: RequestTypeConfig | None, request: SupportRequest) -> str:
    """``，手术日期 2026-12-05 08:00`` for the replies: the needed-by date with its time of day, if any."""
    f = svc.needed_field(rt) if rt is not None else None
    value = svc.shown_fields(ctx.runtime.settings, rt, request).get(f.key) if f is not None else None
    if f is None or not value:
        return ""
    return ctx.t("request.needed_words", label=recipients.field_label(ctx.locale, f), value=value)


def _status_text(ctx: Context, request: SupportRequest, cards: Sequence[TaskCard]) -> str:
    """The request's status as the rep reads it (the rule: ``svc.progress_of``, docs/requests.md)."""
    progress = svc.progress_of(cards)
    if not progress.rejected:
        return ctx.t(f"request.status.{progress.status}")
    departments = "、".join(_department_name(ctx, d) for d in progress.rejected)
    key = "request.status.part_rejected" if progress.open else "request.status.rejected_by"
    return ctx.t(key, departments=departments)


# ---- routes: rep side ----------------------------------------------------------------------------------------


@router.route(in_dialog(FLOW))
async def answer_request(ctx: Context) -> None:
    """A typed answer or a `字段:值` correction while the request dialog runs (other commands pass by)."""
    dialog = RequestDialog.resume(ctx)
    if dialog is not None:
        await dialog.on_text()


@router.route(is_request_command, leaves_dialog)
async def start_request(ctx: Context) -> None:
    """`跟台 浙一 骨科 2026-12-03 器械:脊柱A包`: parse what was given, ask only for what is missing."""
    found = type_for_text(ctx)
    assert found is not None
    type_key, rest = found
    dialog = RequestDialog.begin(ctx, RequestState(token=RequestState.new_token(), type_key=type_key))
    await dialog.start_with(rest)


@router.tap(RequestOffer)
async def request_from_visit(ctx: Context, tap: RequestOffer) -> None:
    """The offer after a visit: start the request with the visit's hospital and ward, linked to the visit."""
    settings = ctx.runtime.settings
    visit = await ctx.session.get(Visit, tap.visit_id)
    if tap.type_key not in settings.request_types or visit is None or visit.rep_id != ctx.user.id:
        ctx.reply(ctx.t("stale_button"))
        return
    rt = settings.request_types[tap.type_key]
    if isinstance(ctx.event, CardAction) and ctx.event.card_ref:
        ctx.update_card(settled_offer(ctx.event.card_ref, ctx.locale, recipients.type_name(ctx.locale, rt)))
    state = RequestState(token=RequestState.new_token(), type_key=tap.type_key, visit_id=visit.id)
    dialog = RequestDialog.begin(ctx, state)
    customer = await ctx.session.get(Customer, visit.customer_id)
    if customer is not None:
        dialog.set("customer", CustomerRef(id=customer.id, name=customer.name))
    if visit.ward and any(f.key == "ward" for f in rt.fields):
        dialog.set("ward", visit.ward)
    await dialog.start_with("", note=ctx.t("request.from_visit", no=f"V{visit.id}"))


@router.route(command(*MY_REQUESTS, roles=(Role.REP,)), leaves_dialog)
async def my_requests(ctx: Context) -> None:
    """The rep's requests of the last two weeks and every open one, with each department's state."""
    since = ctx.now - timedelta(days=LIST_DAYS)
    requests = await svc.recent_for(ctx.session, ctx.user.id, since)
    if not requests:
        ctx.reply(ctx.t("request.list_empty"))
        return
    lines = [ctx.t("request.list_header")]
    for request in requests:
        lines.extend(await _request_lines(ctx, request))
    ctx.reply("\n".join(lines))


async def _request_lines(ctx: Context, request: SupportRequest) -> list[str]:
    rt = ctx.runtime.settings.request_types.get(request.type_key)
    customer = await ctx.session.get(Customer, request.customer_id)
    cards = await svc.cards_of(ctx.session, request.id)
    names = await recipients.names(ctx.session, {c.holder_id or "" for c in cards})
    lines = [
        ctx.t(
            "request.list_line",
            no=svc.request_no(request.id),
            type_name=recipients.type_name(ctx.locale, rt) if rt else request.type_key,
            customer=customer.name if customer else "",
            when=_fmt(ctx, request.created_at),
            status=_status_text(ctx, request, cards),
        )
    ]
    # Each department's current card (a resubmitted part shows its new card; 进度 tells the history).
    for c in svc.current_cards(cards):
        holder = names.get(c.holder_id or "", "")
        lines.append(
            ctx.t(
                "request.card_line",
                department=_department_name(ctx, c.department),
                state=ctx.t(f"task.state.{c.state}"),
                holder=f" · {holder}" if holder else "",
                since=_fmt(ctx, c.state_since),
            )
        )
    return lines


@router.route(command(*PROGRESS), leaves_dialog)
async def request_progress(ctx: Context) -> None:
    """`进度 R12`: the request's facts and each department's card: state, holder, since when, Q&A, files."""
    request_id = svc.parse_request_no(ctx.args.split(" ", 1)[0]) if ctx.args else None
    if request_id is None:
        ctx.reply(ctx.t("request.progress_usage"))
        return
    request = await svc.visible_request(ctx.session, ctx.user, request_id)
    ctx.reply("\n".join(await _progress_lines(ctx, request)))


async def _progress_lines(ctx: Context, request: SupportRequest) -> list[str]:
    no = svc.request_no(request.id)
    rt = ctx.runtime.settings.request_types.get(request.type_key)
    customer = await ctx.session.get(Customer, request.customer_id)
    requester = (await recipients.names(ctx.session, {request.rep_id})).get(request.rep_id, request.rep_id)
    cards = await svc.cards_of(ctx.session, request.id)
    lines = [
        ctx.t(
            "request.progress_header",
            no=no,
            type_name=recipients.type_name(ctx.locale, rt) if rt else request.type_key,
            customer=customer.name if customer else "",
            ward=request.ward or "",
            requester=requester,
            when=_fmt(ctx, request.created_at),
            status=_status_text(ctx, request, cards),
        )
    ]
    if rt is not None:
        values = svc.shown_fields(ctx.runtime.settings, rt, request)
        lines.extend(
            f"{label}：{value}" for label, value in recipients.field_rows(rt, values, "", ctx.locale)[1:] if value
        )
    for line in (await _request_lines(ctx, request))[1:]:
        lines.append(line)
    after = svc.successors(cards)
    for card in cards:
        for q in card.questions or []:
            lines.append(f"    {svc.card_no(card.id)} ❓{q.get('q')}" + (f" 💬{q['a']}" if q.get("a") else ""))
        if card.reject_reason:
            again = ctx.t("request.resubmitted_as", no=svc.card_no(after[card.id].id)) if card.id in after else ""
            lines.append(f"    {svc.card_no(card.id)} ⛔{card.reject_reason}{again}")
        if card.attachments:
            lines.append(f"    {svc.card_no(card.id)} 📎{len(card.attachments)}")
        if card.state == svc.DONE:
            signed = await signatures.latest(ctx.session, CARD_ENTITY, card.id, CardEvent.DONE)
            if signed is not None:
                lines.append(f"    {svc.card_no(card.id)} {signed.line(ctx.locale, ctx.runtime.settings.org.tz)}")
    return lines


# ---- routes: department side ----------------------------------------------------------------------------------


async def _rep_of(ctx: Context, card: TaskCard) -> tuple[SupportRequest, User | None]:
    request = await ctx.session.get(SupportRequest, card.request_id)
    assert request is not None
    return request, await ctx.session.get(User, request.rep_id)


@router.tap(TaskTap)
async def tap_task(ctx: Context, tap: TaskTap) -> None:
    """认领 / 完成 / 驳回 / 需补充 on a task card: (card id, action)."""
    card = await svc.load_card(ctx.session, tap.card_id)
    if card is None:
        ctx.reply(ctx.t("stale_button"))
        return
    svc.check_member(card, ctx.user, ctx.event.kind)
    op = tap.op
    if op == DONE and await _needs_second_factor(ctx, card):
        await _send_code(ctx, card)
        return
    try:
        _check_tap(ctx, card, op)
    except RequestError as exc:
        await say_error(ctx, exc)
        # The tapped copy may be out of date (a stale button): show the card as it is now.
        await refresh_task_card(ctx, card)
        return
    if op in (REJECT, INFO):
        state = TaskInputState(card_id=card.id, op=REJECT if op == REJECT else INFO)
        ctx.conversation.start(INPUT_FLOW, state.model_dump())
        ctx.reply(ctx.t("task.ask_reason" if op == REJECT else "task.ask_question", no=svc.card_no(card.id)))
        return
    await refresh_task_card(ctx, card)
    await (_claimed(ctx, card) if op == CLAIM else _closed(ctx, card, "task.done_ok"))


async def _needs_second_factor(ctx: Context, card: TaskCard) -> bool:
    """Compliance's 完成 on a request type with ``approval_second_factor``."""
    if card.department != COMPLIANCE:
        return False
    request = await ctx.session.get(SupportRequest, card.request_id)
    rt = ctx.runtime.settings.request_types.get(request.type_key) if request is not None else None
    return rt is not None and rt.approval_second_factor


async def _send_code(ctx: Context, card: TaskCard) -> None:
    """The checks of 完成 now; then a one-time code to the signer alone, and 确认 <code> awaited."""
    try:
        svc.check_done(card, ctx.user)
    except RequestError as exc:
        await say_error(ctx, exc)
        await refresh_task_card(ctx, card)
        return
    code = signatures.new_code()
    state = ApproveState(
        card_id=card.id,
        digest=signatures.code_digest(code, card.id, ctx.user.id),
        expires=signatures.code_expires(ctx.now).isoformat(),
    )
    ctx.conversation.start(APPROVE_FLOW, state.model_dump())
    no = svc.card_no(card.id)
    ctx.reply(ctx.t("sig.code_sent", no=no, code=code, minutes=signatures.CODE_MINUTES))


def _check_tap(ctx: Context, card: TaskCard, op: str) -> None:
    """Claim and done are transitions now; reject and need info are checked now, done once the text is typed."""
    if op == CLAIM:
        svc.claim(ctx.session, card, ctx.user, ctx.now, ctx.event.channel)
    elif op == DONE:
        svc.done(ctx.session, card, ctx.user, ctx.now, ctx.event.channel)
    else:
        svc.check_may_question(card, ctx.user, asking=op == INFO)


async def _claimed(ctx: Context, card: TaskCard) -> None:
    ctx.reply(ctx.t("task.claimed_ok", no=svc.card_no(card.id), title=card.title))
    request, rep = await _rep_of(ctx, card)
    if rep is not None:
        department = _department_name(ctx, card.department, rep.locale)
        no = svc.request_no(request.id)
        _notify(ctx, rep, "notice.claimed", no=no, department=department, holder=ctx.user.name, title=card.title)


async def _closed(ctx: Context, card: TaskCard, key: str) -> None:
    """Done or rejected: say so, tell the rep."""
    ctx.reply(ctx.t(key, no=svc.card_no(card.id)))
    request, rep = await _rep_of(ctx, card)
    await _after_close(ctx, card, request, rep)


async def _after_close(ctx: Context, card: TaskCard, request: SupportRequest, rep: User | None) -> None:
    """Tell the rep; when every department is through, say so."""
    if rep is None:
        return
    rno = svc.request_no(request.id)
    department = _department_name(ctx, card.department, rep.locale)
    if card.state == svc.DONE:
        files = ""
        attachments = list(card.attachments or [])
        if attachments:
            kinds = [str(a.get("kind") or "file") for a in attachments]
            names = "、".join(f"{i18n.t(rep.locale, 'media.' + k)}×{kinds.count(k)}" for k in dict.fromkeys(kinds))
            files = i18n.t(rep.locale, "notice.files", count=len(attachments), names=names)
        _notify(ctx, rep, "notice.done", no=rno, department=department, title=card.title, files=files)
        channel = recipients.channel_of(ctx.runtime.channel_for, rep, ctx.event.channel)
        for a in attachments[:MAX_FORWARDED]:
            kind = str(a.get("kind") or "file")
            caption = i18n.t(
                rep.locale, "notice.attachment", card=svc.card_no(card.id), kind=i18n.t(rep.locale, f"media.{kind}")
            )
            ctx.intents.append(
                SendMedia(
                    channel=channel,
                    user_ids=(rep.id,),
                    media_type=kind,
                    media_id=str(a.get("media_id")),
                    source_channel=str(a.get("channel") or ""),
                    caption=caption,
                )
            )
    else:
        # The reason, what to do, and the 重新提交 button (docs/requests.md).
        notice = rejection_notice(
            _rejection_ref(card),
            rep.locale,
            no=rno,
            department=department,
            title=card.title,
            reason=card.reject_reason or "",
            card_id=card.id,
        )
        channel = recipients.channel_of(ctx.runtime.channel_for, rep, ctx.event.channel)
        ctx.intents.append(SendCard(channel=channel, user_ids=(rep.id,), card=notice))
    if await svc.all_done(ctx.session, request, ctx.now):
        rt = ctx.runtime.settings.request_types.get(request.type_key)
        name = recipients.type_name(i18n.normalize_locale(rep.locale), rt) if rt else request.type_key
        _notify(ctx, rep, "request.all_done", no=rno, type_name=name)


def _rejection_ref(card: TaskCard) -> str:
    """The rep's rejection notice of ``card`` (one per card: updated in place once resubmitted)."""
    return f"{card.ref}-rj"


@router.route(command(*RESUBMIT), leaves_dialog)
async def resubmit_request(ctx: Context) -> None:
    """`重新提交 R1 [器械:脊柱B包 …]` (or `重新提交 T3`): the rejected part(s) of the rep's request go out again."""
    first, _, rest = ctx.args.strip().partition(" ")
    request_id, card_id = svc.parse_request_no(first), None
    if request_id is None and first[:1] in ("T", "t"):
        card_id = svc.parse_card_no(first)
    if request_id is None and card_id is None:
        ctx.reply(ctx.t("request.resubmit_usage"))
        return
    await _resubmit(ctx, request_id=request_id, card_id=card_id, text=rest)


@router.tap(Resubmit)
async def tap_resubmit(ctx: Context, tap: Resubmit) -> None:
    """重新提交 on the rejection notice."""
    await _resubmit(ctx, card_id=tap.card_id)


async def _resubmit(ctx: Context, *, request_id: int | None = None, card_id: int | None = None, text: str = "") -> None:
    done = await svc.resubmit(
        ctx.session,
        settings=ctx.runtime.settings,
        rep=ctx.user,
        request_id=request_id,
        card_id=card_id,
        text=text,
        now=ctx.now,
        channel=ctx.event.channel,
    )
    request, no = done.request, svc.request_no(done.request.id)
    for old, new in done.already:
        ctx.reply(ctx.t("request.already_resubmitted", card=svc.card_no(old.id), new=svc.card_no(new.id), no=no))
    if not done.made:
        return
    for old, card, people in done.made:
        department = _department_name(ctx, card.department)
        # The old card stays rejected and says what it became, for its department and on the rep's notice.
        await refresh_task_card(ctx, old)
        notice = rejection_notice(
            _rejection_ref(old),
            ctx.user.locale,
            no=no,
            department=department,
            title=old.title,
            reason=old.reject_reason or "",
            card_id=old.id,
            resubmitted_as=svc.card_no(card.id),
        )
        channel = recipients.channel_of(ctx.runtime.channel_for, ctx.user, ctx.event.channel)
        ctx.intents.append(UpdateCard(channel=channel, user_ids=(ctx.user.id,), card=notice))
        if not people:
            ctx.reply(ctx.t("request.no_recipients", department=department))
        else:
            await send_task_card(ctx, card, request)
        ctx.reply(
            ctx.t(
                "request.resubmitted",
                no=no,
                department=department,
                old=svc.card_no(old.id),
                new=svc.card_no(card.id),
                needed=_needed_words(ctx, done.rt, request),
            )
        )
    if done.corrections:
        f_labels = {f.key: recipients.field_label(ctx.locale, f) for f in done.rt.fields} if done.rt else {}
        changes = "；".join(f"{f_labels.get(k, k)}：{new}" for k, (_, new) in done.corrections.items())
        ctx.reply(ctx.t("request.resubmit_corrected", changes=changes))
        # The departments still at work see the corrected values on their cards.
        made = {c.id for _, c, _ in done.made}
        for other in svc.current_cards(await svc.cards_of(ctx.session, request.id)):
            if other.id not in made and other.state not in svc.CLOSED:
                await refresh_task_card(ctx, other)


@router.route(in_flow(APPROVE_FLOW), is_text)
async def approve_input(ctx: Context) -> None:
    """`确认 123456` (or the code alone) after 完成 on an approval with a second factor."""
    data = _short_flow(ctx, APPROVE_FLOW, ApproveState)
    card = await svc.load_card(ctx.session, data.card_id) if data is not None else None
    if data is None or card is None:
        ctx.conversation.clear()
        ctx.reply(ctx.t("stale_button"))
        return
    no = svc.card_no(card.id)
    if ctx.now > datetime.fromisoformat(data.expires):
        ctx.conversation.clear()
        ctx.reply(ctx.t("sig.code_expired", no=no))
        return
    typed = ctx.text.strip()
    for word in CONFIRM_WORDS:
        if typed.casefold().startswith(word):
            typed = typed[len(word) :].strip()
    if not signatures.code_matches(typed, data.digest, card.id, ctx.user.id):
        tries = data.tries + 1
        if tries >= signatures.CODE_TRIES:
            ctx.conversation.clear()
            ctx.reply(ctx.t("sig.code_locked", no=no))
            return
        ctx.conversation.start(APPROVE_FLOW, data.model_copy(update={"tries": tries}).model_dump())
        ctx.reply(ctx.t("sig.code_wrong", no=no, left=signatures.CODE_TRIES - tries))
        return
    ctx.conversation.clear()
    try:
        svc.done(ctx.session, card, ctx.user, ctx.now, ctx.event.channel, second_factor=True)
    except RequestError as exc:
        await say_error(ctx, exc)
        await refresh_task_card(ctx, card)
        return
    await refresh_task_card(ctx, card)
    await _closed(ctx, card, "task.done_ok")


@router.route(in_flow(INPUT_FLOW), is_text)
async def task_input(ctx: Context) -> None:
    """The reason for 驳回 or the question for 需补充, typed after the tap."""
    data = _short_flow(ctx, INPUT_FLOW, TaskInputState)
    ctx.conversation.clear()
    card = await svc.load_card(ctx.session, data.card_id) if data is not None else None
    if data is None or card is None:
        ctx.reply(ctx.t("stale_button"))
        return
    text = ctx.text.strip()
    try:
        if data.op == REJECT:
            svc.reject(ctx.session, card, ctx.user, text, ctx.now, ctx.event.channel)
        else:
            svc.ask(ctx.session, card, ctx.user, text, ctx.now, ctx.event.channel)
    except RequestError as exc:
        await say_error(ctx, exc)  # the flow is over all the same: a fresh tap asks again
        return
    await refresh_task_card(ctx, card)
    await (_closed(ctx, card, "task.rejected_ok") if data.op == REJECT else _asked(ctx, card, text))


async def _asked(ctx: Context, card: TaskCard, question: str) -> None:
    ctx.reply(ctx.t("task.asked_ok"))
    request, rep = await _rep_of(ctx, card)
    if rep is not None:
        department = _department_name(ctx, card.department, rep.locale)
        no, card_no = svc.request_no(request.id), svc.card_no(card.id)
        params = {"department": department, "holder": ctx.user.name}
        _notify(ctx, rep, "notice.need_info", no=no, card=card_no, question=question, **params)


async def _answer(ctx: Context, card: TaskCard, text: str) -> None:
    told = await svc.relay_answer(ctx.session, card, ctx.user, text, ctx.now, ctx.event.channel)
    await refresh_task_card(ctx, card)
    ctx.reply(ctx.t("task.answer_relayed", department=_department_name(ctx, card.department), answer=text))
    for person in told:
        _notify(ctx, person, "notice.answered", card=svc.card_no(card.id), rep=ctx.user.name, answer=text)


@router.route(command(*ANSWER, roles=(Role.REP,)), leaves_dialog)
async def answer_question(ctx: Context) -> None:
    """`补充 T12 王主任主刀`: the rep's answer to a department's question."""
    no_text, _, rest = ctx.args.partition(" ")
    card_id = svc.parse_card_no(no_text)
    if card_id is None or not rest.strip():
        ctx.reply(ctx.t("task.answer_usage"))
        return
    card = await svc.load_card(ctx.session, card_id)
    if card is None:
        ctx.reply(ctx.t("task.not_found", no=no_text))
        return
    await _answer(ctx, card, rest.strip())


async def _attach(ctx: Context, card: TaskCard, media: list[dict[str, str]]) -> None:
    try:
        for m in media:
            await svc.attach(ctx.session, card, ctx.user, m["kind"], m["media_id"], ctx.now, ctx.event.channel)
    except RequestError as exc:
        # Answered here, not by the dispatcher: the waiting file's flow has ended either way.
        await say_error(ctx, exc)
        return
    await refresh_task_card(ctx, card)
    ctx.reply(ctx.t("task.attached_ok", no=svc.card_no(card.id), count=len(card.attachments or [])))


@router.route(command(*ATTACH, roles=(Role.MEMBER, Role.HEAD)), leaves_dialog)
async def attach_target(ctx: Context) -> None:
    """`附件 T12`: the next file goes to card T12 (or the file just sent, if one is waiting)."""
    card_id = svc.parse_card_no(ctx.args.split(" ", 1)[0]) if ctx.args else None
    if card_id is None:
        ctx.reply(ctx.t("task.attach_usage"))
        return
    card = await svc.load_card(ctx.session, card_id)
    if card is None:
        ctx.reply(ctx.t("task.not_found", no=ctx.args))
        return
    svc.check_member(card, ctx.user, ctx.event.kind)
    waiting = _short_flow(ctx, ATTACH_FLOW, AttachState)
    if waiting is not None and waiting.pending_media:
        ctx.conversation.clear()
        await _attach(ctx, card, [m.model_dump() for m in waiting.pending_media])
        return
    ctx.conversation.start(ATTACH_FLOW, AttachState(card_id=card.id).model_dump())
    ctx.reply(ctx.t("task.attach_target", no=svc.card_no(card.id)))


@router.route(is_media)
async def receive_media(ctx: Context) -> None:
    """A photo or file: evidence for the card its sender is working on."""
    event = ctx.event
    assert isinstance(event, MediaMessage)
    media = PendingMedia(kind=event.media_type, media_id=event.media_id)
    conv = ctx.conversation
    waiting = _short_flow(ctx, ATTACH_FLOW, AttachState)
    if waiting is not None and waiting.card_id is not None:
        card = await svc.load_card(ctx.session, waiting.card_id)
        conv.clear()
        if card is not None:
            await _attach(ctx, card, [media.model_dump()])
            return
    held = await svc.held_cards(ctx.session, ctx.user.id)
    if len(held) == 1:
        await _attach(ctx, held[0], [media.model_dump()])
        return
    if not held:
        ctx.reply(ctx.t("fallback.media"))
        return
    pending = waiting.pending_media if waiting is not None else []
    conv.start(ATTACH_FLOW, AttachState(pending_media=[*pending, media][-9:]).model_dump())
    ctx.reply(ctx.t("task.attach_which", cards="、".join(svc.card_no(c.id) for c in held)))


@late_router.route(is_text)
async def answer_plain(ctx: Context) -> None:
    """A rep's plain text while a department waits for their answer: relayed when exactly one card waits."""
    questions = await svc.open_questions(ctx.session, ctx.user.id)
    if not questions:
        await help.unknown_text(ctx)
        return
    if len(questions) > 1:
        ctx.reply(ctx.t("task.answer_which", cards="、".join(svc.card_no(c.id) for c in questions)))
        return
    card = await svc.load_card(ctx.session, questions[0].id)
    assert card is not None
    await _answer(ctx, card, ctx.text.strip())
