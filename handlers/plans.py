"""Visit plans in chat (docs/plans.md): 计划 …, 我的计划, 取消计划 …; a manager plans for their reps."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from pydantic import Field

from bot.core.routing import Context, Router, command
from bot.dialogs.engine import FormDialog, in_dialog, leaves_dialog
from bot.dialogs.form import FieldSpec, Form
from bot.dialogs.state import CustomerRef, DialogState
from bot.infra import i18n
from bot.parsing.plan_parser import PlanWhen, parse_plan_line, parse_span, split_words
from bot.services import advice
from bot.services import plans as svc
from cards.model import Card
from cards.payload import parse_id
from cards.plans import PlanChoice, PlanConfirm
from storage.models import Customer, User
from storage.vocab import PlanPeriod, Role

router = Router("plans")

FLOW = "plan"
PLAN = ("计划", "plan")
MY_PLAN = ("我的计划", "my plan")
CANCEL_PLAN = ("取消计划", "cancel plan")
_PLANNERS = (Role.REP, Role.MANAGER, Role.DIRECTOR)


class PlanState(DialogState):
    """The plan being made: whose, when, the hospitals resolved, the names still to choose among candidates."""

    rep_id: str | None = None
    period: PlanPeriod | None = None
    day: date | None = None
    customers: list[CustomerRef] = Field(default_factory=list)
    # Names that matched several hospitals, asked one at a time (choice card).
    pending: list[str] = Field(default_factory=list)
    purpose: str | None = None

    def get(self, key: str) -> Any:
        if key == "when":
            return PlanWhen(self.period, self.day) if self.period and self.day else None
        return getattr(self, key)

    def put(self, key: str, value: Any) -> None:
        if key == "when":
            self.period, self.day = (value.period, value.day) if value is not None else (None, None)
        elif key == "customers":
            self.customers = list(value or [])
            if value is None:
                self.pending = []
        else:
            setattr(self, key, value)


def _label(name: str) -> tuple[str, str]:
    return i18n.t(i18n.ZH, f"field.plan_{name}"), i18n.t(i18n.EN, f"field.plan_{name}")


async def _parse_when(d: PlanDialog, text: str) -> None:
    when = parse_span(text, d.today)
    if when is None:
        d.note("plan.bad_when", value=text.strip())
        return
    try:
        svc.check_when(when, d.ctx.now, d.tz)
    except svc.PlanError as exc:
        d.note(exc.key, **exc.params)
        d.drop("when")
        return
    d.set("when", when)


async def _parse_customers(d: PlanDialog, text: str) -> None:
    await d.add_customers(split_words(text))


async def _parse_purpose(d: PlanDialog, text: str) -> None:
    d.set("purpose", text.strip()[:200] or None)


async def _customer_choices(d: PlanDialog) -> list[tuple[str, str]]:
    if not d.state.pending:
        return []
    matcher = await d.ctx.runtime.directory.matcher(d.ctx.session)
    return [(c.entry.name, str(c.entry.id)) for c in matcher.match(d.state.pending[0]).candidates]


_FORM = Form(
    [
        FieldSpec("when", *_label("when"), ("日子", "哪天", "时间", "date", "day"), required=True, parse=_parse_when),
        FieldSpec(
            "customers",
            *_label("customers"),
            ("客户", "hospitals", "customer"),
            required=True,
            parse=_parse_customers,
            choices=_customer_choices,
        ),
        FieldSpec("purpose", *_label("purpose"), ("purpose",), parse=_parse_purpose),
    ]
)


class PlanDialog(FormDialog[PlanState]):
    """The plan dialog on the engine. A plan complete in one line is saved at once (no confirmation card: reps
    plan several times a day); otherwise the engine asks for the day, the hospitals, or which hospital an ambiguous
    name meant, and the plan is saved as soon as nothing is missing."""

    flow = FLOW
    ref_prefix = "p"
    choice_payload = PlanChoice
    confirm_payload = PlanConfirm

    def __init__(self, ctx: Context, state: PlanState) -> None:
        self.tz = ctx.runtime.settings.org.tz
        super().__init__(ctx, state)

    def build_form(self) -> Form:
        return _FORM

    @property
    def today(self) -> date:
        return svc.local_today(self.ctx.now, self.tz)

    # ---- input --------------------------------------------------------------------------------------------

    async def parse_line(self, text: str) -> None:
        """The opening line (whose, when, hospitals, 目的:…) or a ``字段:值`` correction."""
        head, sep, value = text.replace("：", ":").partition(":")
        key = self.form.key_for(head.strip()) if sep else None
        if key is not None:
            if key == "customers":
                self.set("customers", None)
            await self.answer(key, value)
            return
        line = parse_plan_line(text, self.today)
        words = line.words
        if self.state.rep_id is None:
            rep, words = await svc.target_of(self.ctx.session, self.ctx.user, words)
            self.state.rep_id = rep.id
        if line.when is not None:
            try:
                svc.check_when(line.when, self.ctx.now, self.tz)
                self.set("when", line.when)
            except svc.PlanError as exc:
                self.note(exc.key, **exc.params)
        if line.purpose:
            self.set("purpose", line.purpose)
        if words:
            await self.add_customers(words)

    async def add_customers(self, words: Sequence[str]) -> None:
        """Each word to one hospital; an ambiguous one is asked (choice card), an unknown one is said and skipped."""
        matcher = await self.ctx.runtime.directory.matcher(self.ctx.session)
        chosen = list(self.state.customers)
        if self.state.pending and words:
            # A typed answer to "which hospital": it replaces the name being asked about.
            self.state.pending = self.state.pending[1:]
        for word in words:
            result = matcher.match(word)
            if result.best is not None:
                if all(c.id != result.best.id for c in chosen):
                    chosen.append(CustomerRef(id=result.best.id, name=result.best.name))
            elif result.status == "ambiguous":
                self.state.pending = [*self.state.pending, word]
            else:
                names = "、".join(c.entry.name for c in result.candidates)
                suggest = self.ctx.t("visit.suggest", names=names) if names else ""
                self.note("plan.unknown_customer", text=word, suggest=suggest)
        if chosen != self.state.customers:
            self.set("customers", chosen)
        elif self.state.pending:
            self.changed.append("customers")

    async def tapped(self, key: str, value: str) -> bool:
        """A hospital button: the customer's id, for the name being asked about."""
        if key != "customers" or not self.state.pending:
            return False
        customer_id = parse_id(value)
        customer = await self.ctx.session.get(Customer, customer_id) if customer_id is not None else None
        if customer is None:
            return False
        self.state.pending = self.state.pending[1:]
        if all(c.id != customer.id for c in self.state.customers):
            self.set("customers", [*self.state.customers, CustomerRef(id=customer.id, name=customer.name)])
        return True

    def missing(self) -> list[str]:
        if self.state.pending:
            return ["customers"]
        return super().missing()

    # ---- output -------------------------------------------------------------------------------------------

    def question(self, key: str, options: Sequence[tuple[str, str]] = ()) -> str:
        if key == "customers" and self.state.pending:
            return self.ctx.t("plan.ask.choose", text=self.state.pending[0])
        return self.ctx.t(f"plan.ask.{key}")

    def shown(self, key: str) -> str:
        if key == "when":
            when = self.state.get("when")
            return span_text(self.ctx.locale, when, self.today) if when else ""
        if key == "customers":
            return "、".join(c.name for c in self.state.customers)
        return super().shown(key)

    async def rows(self) -> list[tuple[str, str]]:
        t = self.ctx.t
        return [(t("field.plan_when"), self.shown("when")), (t("field.plan_customers"), self.shown("customers"))]

    def confirm_card(self, ref: str, rows: Sequence[tuple[str, str]], status: str = "") -> Card:
        return Card(ref=ref, title="", status=status)

    async def advance(self, *, fresh: bool = False) -> None:
        """Ask for what is missing; once nothing is, save (no confirmation card)."""
        if self.missing():
            await super().advance(fresh=fresh)
            return
        await self.submit()

    async def submit(self) -> None:
        ctx, state = self.ctx, self.state
        when = state.get("when")
        assert when is not None
        if state.rep_id is None:  # a bare 计划 (nothing named): the sender's own plan
            state.rep_id = (await svc.target_of(ctx.session, ctx.user, []))[0].id
        rep = await ctx.session.get(User, state.rep_id)
        assert rep is not None
        done = await svc.add(
            ctx.session,
            rep=rep,
            actor=ctx.user,
            when=when,
            customers=[svc.Planned(c.id, c.name) for c in state.customers],
            purpose=state.purpose,
            now=ctx.now,
            tz=self.tz,
            channel=ctx.event.channel,
        )
        self.flush()
        self.finish()
        ctx.reply(saved_text(ctx, done, self.today))
        if done.created and rep.id != ctx.user.id:
            items = "、".join(name for _, name in done.created)
            span = span_text(rep.locale, done.when, self.today)
            ctx.notify(rep, i18n.t(rep.locale, "plan.assigned_notice", manager=ctx.user.name, span=span, items=items))


def span_text(locale: str, when: PlanWhen, today: date) -> str:
    """今天（11-24 周二）/ 明天（…）/ 11-26 周四 / 本周 / 下周（11-30 起）."""
    label = svc.day_label(when.day)
    if when.period == PlanPeriod.WEEK:
        this_week = today - timedelta(days=today.weekday())
        if when.day == this_week:
            return i18n.t(locale, "plan.span.this_week")
        if when.day == this_week + timedelta(days=7):
            return i18n.t(locale, "plan.span.next_week", day=label)
        return i18n.t(locale, "plan.span.week", day=label)
    if when.day == today:
        return i18n.t(locale, "plan.span.today", day=label)
    if when.day == today + timedelta(days=1):
        return i18n.t(locale, "plan.span.tomorrow", day=label)
    return i18n.t(locale, "plan.span.day", day=label)


def saved_text(ctx: Context, done: svc.Added, today: date) -> str:
    span = span_text(ctx.locale, done.when, today)
    if not done.created:
        return ctx.t("plan.nothing_new", span=span, names="、".join(done.existing))
    items = "、".join(f"{name}（{svc.plan_no(item.id)}）" for item, name in done.created)
    purpose = done.created[0][0].purpose
    if done.rep.id == ctx.user.id:
        text = ctx.t("plan.saved", span=span, items=items)
    else:
        text = ctx.t("plan.saved_for", rep=done.rep.name, span=span, items=items)
    if purpose:
        text += ctx.t("plan.purpose_suffix", purpose=purpose)
    if done.existing:
        text += "\n" + ctx.t("plan.already", names="、".join(done.existing))
    return text


# ---- routes --------------------------------------------------------------------------------------------------


@router.route(in_dialog(FLOW))
async def answer_plan(ctx: Context) -> None:
    """A typed answer or a ``字段:值`` correction while the plan dialog asks."""
    dialog = PlanDialog.resume(ctx)
    if dialog is not None:
        await dialog.on_text()


@router.route(command(*MY_PLAN, roles=_PLANNERS), leaves_dialog)
async def show_my_plan(ctx: Context) -> None:
    """``我的计划``: today and this week, ✓ done / ○ open, with counts; ``我的计划 王磊`` for a manager."""
    rep = ctx.user
    if ctx.args.strip():
        rep, _ = await svc.target_of(ctx.session, ctx.user, ctx.args.split())
    elif Role.REP not in (ctx.user.roles or [Role.REP]):
        ctx.reply(ctx.t("plan.view_whose"))
        return
    view = await svc.overview(ctx.session, ctx.user, rep, now=ctx.now, tz=ctx.runtime.settings.org.tz)
    ctx.reply(view_text(ctx, view))


def view_text(ctx: Context, view: svc.PlanView) -> str:
    if not view.today_items and not view.week_items:
        return ctx.t("plan.view_empty")

    def line(item: svc.ItemView) -> str:
        if item.period == PlanPeriod.WEEK:
            when = ctx.t("plan.view_week_item")
        elif item.day != view.today:
            when = ctx.t("plan.view_day_item", day=svc.day_label(item.day))
        else:
            when = ""
        purpose = ctx.t("plan.purpose_suffix", purpose=item.purpose) if item.purpose else ""
        mark = "✓" if item.done else "○"
        text = ctx.t(
            "plan.view_line", mark=mark, no=svc.plan_no(item.id), customer=item.customer, when=when, purpose=purpose
        )
        # The manager's newest advice under an item still to do (docs/customers.md "Seeing a customer").
        tip = advice.advice_line(item.advice, ctx.locale) if not item.done else None
        return f"{text}\n{tip}" if tip else text

    lines = []
    if view.rep.id != ctx.user.id:
        lines.append(ctx.t("plan.view_header", rep=view.rep.name))
    today = view.today_items
    lines.append(
        ctx.t("plan.view_today", day=svc.day_label(view.today), done=sum(i.done for i in today), total=len(today))
    )
    lines += [line(i) for i in today] or [ctx.t("plan.view_none")]
    week = view.week_items + today
    lines.append(
        ctx.t(
            "plan.view_week",
            start=svc.day_label(view.week_start),
            done=sum(i.done for i in week),
            total=len(week),
        )
    )
    lines += [line(i) for i in view.week_items] or [ctx.t("plan.view_none")]
    lines.append(ctx.t("plan.view_legend"))
    return "\n".join(lines)


@router.route(command(*CANCEL_PLAN, roles=_PLANNERS), leaves_dialog)
async def cancel_plan(ctx: Context) -> None:
    """``取消计划 P12`` / ``取消计划 浙一 明天`` (a manager: ``取消计划 王磊 浙一 明天``): status cancelled, audited."""
    if not ctx.args.strip():
        ctx.reply(ctx.t("plan.cancel_usage"))
        return
    tz = ctx.runtime.settings.org.tz
    done = await svc.cancel(
        ctx.session, ctx.runtime.directory, ctx.user, ctx.args, now=ctx.now, tz=tz, channel=ctx.event.channel
    )
    if not done.items:
        ctx.reply(ctx.t("plan.cancel_nothing"))
        return
    today = svc.local_today(ctx.now, tz)

    def described(locale: str) -> str:
        return "、".join(
            f"{svc.plan_no(item.id)} {name}（{span_text(locale, PlanWhen(PlanPeriod(item.period), item.day), today)}）"
            for item, name in done.items
        )

    ctx.reply(ctx.t("plan.cancelled", items=described(ctx.locale)))
    if done.rep.id != ctx.user.id:
        rep = done.rep
        ctx.notify(rep, i18n.t(rep.locale, "plan.cancelled_notice", manager=ctx.user.name, items=described(rep.locale)))


@router.route(command(*PLAN, roles=_PLANNERS), leaves_dialog)
async def start_plan(ctx: Context) -> None:
    """``计划 明天 浙一 浙二``: saved at once when complete; else the dialog asks for what is missing."""
    state = PlanState(token=PlanState.new_token())
    if not ctx.args.strip():
        # A bare 计划: the sender's own plan (a manager is told to name the rep before any question).
        state.rep_id = (await svc.target_of(ctx.session, ctx.user, []))[0].id
    dialog = PlanDialog.begin(ctx, state)
    await dialog.start_with(ctx.args)
