"""Grade changes with a reason (issue 14, docs/customers.md "Grades"): ``调级 浙二 A 原因:…`` (or ``grade …``),
the approver's card (同意 / 驳回, a rejection asks for its reason), and the typed fallbacks ``同意调级 G3`` /
``驳回调级 G3 原因:…``. What is missing from the line is asked for (the dialog engine)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from pydantic import BaseModel, ValidationError

from bot.core.events import CardAction
from bot.core.intents import SendCard, UpdateCard
from bot.core.routing import Context, Router, command, in_flow, is_text
from bot.dialogs.engine import DirectFormDialog, classify, in_dialog, leaves_dialog
from bot.dialogs.form import FieldSpec, Form
from bot.dialogs.state import CustomerFieldState
from bot.infra import i18n
from bot.services import grades as svc
from bot.services.grades import GradeError, Outcome
from cards.grades import GradeChoice, GradeConfirm, GradeOp, GradeTap, grade_card
from cards.payload import parse_id
from handlers import hospital
from storage.models import Customer
from storage.vocab import Role

router = Router("grades")

GRADE = ("调级", "grade")
APPROVE = ("同意调级", "approve grade")
REJECT = ("驳回调级", "reject grade")
_ROLES = (Role.REP, Role.MANAGER, Role.DIRECTOR, Role.ADMIN)
_DECIDERS = (Role.MANAGER, Role.DIRECTOR, Role.ADMIN)
FLOW = "grade"
REJECT_FLOW = "grade_reject"
# ``原因:…`` / ``原因：…`` / ``reason: …``: everything after it is the reason.
_REASON = re.compile(r"(?:原因|理由|reason)\s*[:：]", re.IGNORECASE)
_KEY = re.compile(r"(\S+?)\s*[:：]")


# ---- the request: one line, or a short dialog for what it does not give ------------------------------------------


class GradeState(CustomerFieldState):
    grade: str | None = None
    reason: str | None = None


def _field_label(name: str) -> tuple[str, str]:
    return i18n.t(i18n.ZH, f"grade.field.{name}"), i18n.t(i18n.EN, f"grade.field.{name}")


async def _take_customer(d: GradeDialog, customer: Customer) -> None:
    try:
        await svc.check_customer(d.ctx.session, d.ctx.user, customer)
    except GradeError as exc:
        d.notes.append(await d.ctx.error_text(exc))
        d.drop("customer")
        return
    d.set("customer", (customer.id, customer.name))


async def _parse_customer(d: GradeDialog, text: str) -> None:
    word = text.strip()
    if not word:
        return
    found = await hospital.match_in_dialog(d, word, "grade.unknown_customer")
    if found is not None:
        customer = await d.ctx.session.get(Customer, found[0])
        if customer is not None:
            await _take_customer(d, customer)


async def _parse_grade(d: GradeDialog, text: str) -> None:
    grade = svc.parse_grade(text)
    if grade is None:
        d.note("grade.bad_word", text=text.strip(), grades="、".join(svc.org_grades(d.ctx.runtime.settings)))
        return
    d.set("grade", grade)


async def _parse_reason(d: GradeDialog, text: str) -> None:
    reason = " ".join(text.split())
    if len(reason) > svc.REASON_MAX:
        d.note("grade.reason_too_long", limit=svc.REASON_MAX)
        return
    d.set("reason", reason or None)


async def _grade_choices(d: GradeDialog) -> list[tuple[str, str]]:
    current = await d.current()
    return [(g, g) for g in svc.org_grades(d.ctx.runtime.settings) if current is None or g != current.grade]


_FORM = Form(
    [
        FieldSpec(
            "customer", *_field_label("customer"), ("医院", "客户", "hospital"), required=True, parse=_parse_customer
        ),
        FieldSpec(
            "grade",
            *_field_label("grade"),
            ("等级", "级别", "grade"),
            required=True,
            parse=_parse_grade,
            choices=_grade_choices,
        ),
        FieldSpec("reason", *_field_label("reason"), ("原因", "理由", "reason"), required=True, parse=_parse_reason),
    ]
)


class GradeDialog(DirectFormDialog[GradeState]):
    """Asks for the hospital, the grade and the reason the line did not give; the request is made as soon as
    nothing is missing (no confirmation card: the line says it all)."""

    flow = FLOW
    ref_prefix = "g"
    choice_payload = GradeChoice
    confirm_payload = GradeConfirm

    def build_form(self) -> Form:
        return _FORM

    async def current(self) -> Customer | None:
        cid = self.state.customer_id
        return await self.ctx.session.get(Customer, cid) if cid is not None else None

    async def parse_line(self, text: str) -> None:
        """``浙二 A 原因:…``: positional words (the hospital, a grade letter; other words are the reason when no
        ``原因:`` is given) and ``字段:值`` pairs."""
        reason: str | None = None
        m = _REASON.search(text)
        if m is not None:
            text, reason = text[: m.start()], text[m.end() :].strip()
        pairs: list[tuple[str, str]] = []
        head = text
        keyed = [k for k in _KEY.finditer(text) if self.form.key_for(k.group(1)) is not None]
        if keyed:
            head = text[: keyed[0].start()]
            for n, k in enumerate(keyed):
                end = keyed[n + 1].start() if n + 1 < len(keyed) else len(text)
                pairs.append((self.form.key_for(k.group(1)) or "", text[k.end() : end].strip()))
        extra: list[str] = []
        customer_word: str | None = None
        grade_word: str | None = None
        for word in head.split():
            if grade_word is None and svc.parse_grade(word) is not None:
                grade_word = word
            elif customer_word is None:
                customer_word = word
            else:
                extra.append(word)
        if customer_word is not None:
            await self.answer("customer", customer_word)
        if grade_word is not None:
            await self.answer("grade", grade_word)
        for key, value in pairs:
            await self.answer(key, value)
        if reason is None and extra and not any(k == "reason" for k, _ in pairs):
            reason = " ".join(extra)
        if reason is not None:
            await self.answer("reason", reason)

    async def tapped(self, key: str, value: str) -> bool:
        if key == "customer":
            customer_id = parse_id(value)
            customer = await self.ctx.session.get(Customer, customer_id) if customer_id is not None else None
            if customer is None:
                return False
            await _take_customer(self, customer)
            return True
        await self.answer(key, value)
        return True

    async def check(self) -> None:
        """A grade the org does not use, or the customer's grade already: said, and asked again."""
        customer = await self.current()
        if customer is None or not self.state.grade:
            return
        try:
            svc.check_grade(self.ctx.runtime.settings, customer, self.state.grade)
        except GradeError as exc:
            self.notes.append(await self.ctx.error_text(exc))
            self.state.grade = None

    def question(self, key: str, options: Sequence[tuple[str, str]] = ()) -> str:
        if key == "customer" and options:
            return self.ctx.t("grade.choose", text=self.ctx.text.strip() or "")
        if key == "grade":
            name = self.state.customer_name or ""
            return self.ctx.t("grade.ask.grade", customer=name)
        return self.ctx.t(f"grade.ask.{key}")

    async def submit(self) -> None:
        ctx, state = self.ctx, self.state
        assert state.customer_id is not None and state.grade and state.reason
        self.flush()
        self.finish()
        done = await svc.request_change(
            ctx.session,
            ctx.runtime.settings,
            ctx.user,
            state.customer_id,
            state.grade,
            state.reason,
            ctx.now,
            ctx.event.channel,
        )
        _requested(ctx, done)


def _change_text(done: Outcome, locale: str) -> dict[str, str]:
    v = done.view
    return {"no": v.no, "customer": v.customer, "old": v.old_grade or i18n.t(locale, "grade.none"), "new": v.new_grade}


def _requested(ctx: Context, done: Outcome) -> None:
    params = _change_text(done, ctx.locale)
    if done.change.state == svc.DIRECT:
        ctx.reply(ctx.t("grade.direct_ok", **params))
        _tell(ctx, done)
        return
    if not done.approvers:
        ctx.reply(ctx.t("grade.requested_nobody", **params))
        return
    ctx.reply(ctx.t("grade.requested_ok", who="、".join(u.name for u in done.approvers), **params))
    for person in done.approvers:
        card = grade_card(done.view, person.locale, ctx.settings.org.tz)
        ctx.intents.append(SendCard(channel=ctx.runtime.channel_for(person), user_ids=(person.id,), card=card))


def _tell(ctx: Context, done: Outcome) -> None:
    """The requester and the customer's rep, of a decision (or of a director's direct change)."""
    who = ctx.user.name
    reason = done.change.decision_reason or ""
    for person in done.told:
        if person.id == done.change.requested_by:
            key = "grade.notice.confirmed" if done.change.state == svc.CONFIRMED else "grade.notice.rejected"
        else:
            key = "grade.notice.rep_rejected" if done.change.state == svc.REJECTED else "grade.notice.rep_changed"
        text = i18n.t(person.locale, key, who=who, reason=reason, **_change_text(done, person.locale))
        ctx.notify(person, text)


def _refresh_cards(ctx: Context, done: Outcome) -> None:
    """Every copy of the card, in place, for those it went to (and the tapped copy, whoever holds it)."""
    targets = {u.id: u for u in done.approvers}
    for person in targets.values():
        card = grade_card(done.view, person.locale, ctx.settings.org.tz)
        ctx.intents.append(UpdateCard(channel=ctx.runtime.channel_for(person), user_ids=(person.id,), card=card))
    if isinstance(ctx.event, CardAction) and ctx.user.id not in targets:
        ctx.update_card(grade_card(done.view, ctx.locale, ctx.settings.org.tz))


def _already(ctx: Context, done: Outcome) -> None:
    v = done.view
    ctx.reply(ctx.t("grade.already", no=v.no, state=ctx.t(f"grade.state.{v.state}"), who=v.decided_by or ""))
    if isinstance(ctx.event, CardAction):
        ctx.update_card(grade_card(v, ctx.locale, ctx.settings.org.tz))


@router.route(command(*GRADE, roles=_ROLES), leaves_dialog)
async def start_grade_change(ctx: Context) -> None:
    """``调级 <医院> <等级> 原因:<原因>``: a request to the approver (a director's change applies at once)."""
    if not svc.may_change(ctx.user):
        ctx.reply(ctx.t("grade.no_permission"))
        return
    words = _REASON.split(ctx.args, maxsplit=1)[0].split()
    first = next((w for w in words if svc.parse_grade(w) is None), None)
    if first is not None:
        # A hospital this person may not change is refused at once (and audited), not asked about.
        matcher = await ctx.runtime.directory.matcher(ctx.session)
        best = matcher.match(first).best
        customer = await ctx.session.get(Customer, best.id) if best is not None else None
        if customer is not None:
            await svc.check_customer(ctx.session, ctx.user, customer)
    dialog = GradeDialog.begin(ctx, GradeState(token=GradeState.new_token()))
    await dialog.start_with(ctx.args)


@router.route(in_dialog(FLOW))
async def answer_grade_change(ctx: Context) -> None:
    """A typed answer while the 调级 dialog asks."""
    dialog = GradeDialog.resume(ctx)
    if dialog is not None:
        await dialog.on_text()


# ---- the decision: the card's buttons, a rejection's reason, the typed fallbacks -----------------------------------


class RejectState(BaseModel):
    change_id: int


async def _decide(ctx: Context, change_id: int, *, approve: bool, reason: str = "") -> None:
    done = await svc.decide(
        ctx.session,
        ctx.runtime.settings,
        ctx.user,
        change_id,
        approve=approve,
        reason=reason,
        now=ctx.now,
        channel=ctx.event.channel,
    )
    if done.already:
        _already(ctx, done)
        return
    if ctx.conversation.flow == REJECT_FLOW:
        # 驳回 was tapped, then a decision made another way (同意, 驳回调级 G3 原因:…): no reason is awaited any more.
        ctx.conversation.clear()
    _refresh_cards(ctx, done)
    params = _change_text(done, ctx.locale)
    ctx.reply(ctx.t("grade.confirmed_ok" if approve else "grade.rejected_ok", **params))
    _tell(ctx, done)


async def _ask_reject_reason(ctx: Context, change_id: int) -> None:
    done = await svc.check_decide(ctx.session, ctx.user, change_id)
    if done.already:
        _already(ctx, done)
        return
    ctx.conversation.start(REJECT_FLOW, RejectState(change_id=change_id).model_dump())
    ctx.reply(ctx.t("grade.ask_reject_reason", no=done.view.no))


@router.tap(GradeTap)
async def tap_grade(ctx: Context, tap: GradeTap) -> None:
    """同意 / 驳回 on a grade-change card."""
    if tap.op == GradeOp.APPROVE:
        await _decide(ctx, tap.change_id, approve=True)
    else:
        await _ask_reject_reason(ctx, tap.change_id)


def _numbered(ctx: Context) -> tuple[int | None, str]:
    first, _, rest = ctx.args.strip().partition(" ")
    return svc.parse_grade_no(first), rest.strip()


@router.route(command(*APPROVE, roles=_DECIDERS), leaves_dialog)
async def approve_typed(ctx: Context) -> None:
    """``同意调级 G3``: as 同意 on the card."""
    change_id, _ = _numbered(ctx)
    if change_id is None:
        ctx.reply(ctx.t("grade.approve_usage"))
        return
    await _decide(ctx, change_id, approve=True)


@router.route(command(*REJECT, roles=_DECIDERS), leaves_dialog)
async def reject_typed(ctx: Context) -> None:
    """``驳回调级 G3 原因:…``: as 驳回 on the card; without a reason it is asked for."""
    change_id, rest = _numbered(ctx)
    if change_id is None:
        ctx.reply(ctx.t("grade.reject_usage"))
        return
    m = _REASON.search(rest)
    reason = rest[m.end() :].strip() if m is not None else rest
    if not reason:
        await _ask_reject_reason(ctx, change_id)
        return
    await _decide(ctx, change_id, approve=False, reason=reason)


def _not_a_command(ctx: Context) -> bool:
    """A text that is not another route's command (日报, 拜访 浙一 …): those work while a reason is awaited."""
    return classify(ctx, Form([]), answering=True) != "escape"


# Registered after the typed commands: 同意调级 G4 typed while a reason is awaited is that command.
@router.route(in_flow(REJECT_FLOW), is_text, _not_a_command)
async def reject_reason(ctx: Context) -> None:
    """The reason typed after 驳回."""
    try:
        state: RejectState | None = RejectState.model_validate(ctx.conversation.data)
    except ValidationError:
        state = None
    ctx.conversation.clear()
    if state is None:
        ctx.reply(ctx.t("stale_button"))
        return
    await _decide(ctx, state.change_id, approve=False, reason=ctx.text)
