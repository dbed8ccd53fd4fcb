"""The customer view (``客户 浙二``, docs/customers.md "Seeing a customer") as neutral data, and its rendering as one
rich-text message (``cards.rich``): WeCom markdown, DingTalk markdown, console HTML, plain text elsewhere. The view is
long and changes nothing, so it is a formatted message rather than a template card (those hold six short fields).

The service (``bot.services.customer_view``) fills a ``CustomerView``; this module only turns it into text."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import partial
from typing import Literal
from zoneinfo import ZoneInfo

from bot.infra import i18n
from cards.rich import Line, RichText, Section, Span

Access = Literal["full", "score"]
# One block per eighth of 0–100; a week without a score shows as a dot.
_BLOCKS = "▁▂▃▄▅▆▇█"
_GAP = "·"
WEEKDAYS_ZH = "一二三四五六日"


@dataclass(frozen=True)
class ScoreView:
    """The newest customer_scores row: the score, its components (0–100), the raw values, the grades that night."""

    night: date
    score: float
    purchases: float
    trials: float
    events: float
    purchases_amount: Decimal
    trials_count: int
    attendees: int
    suggested_grade: str | None


@dataclass(frozen=True)
class WeekPoint:
    """One week of the trend (Monday ``week``): the newest score of that week, None for a week without one."""

    week: date
    score: float | None


@dataclass(frozen=True)
class AlertLine:
    night: date
    title: str
    level: str


@dataclass(frozen=True)
class VisitLine:
    at: datetime
    rep: str
    ward: str | None
    contacts: tuple[str, ...]
    objection: str | None
    objection_note: str | None
    next_step: str | None
    topics: str | None


@dataclass(frozen=True)
class RequestLine:
    """An open support request: its number, type (as shown), when it was made, each department's current card."""

    no: str
    type_name: str
    created_at: datetime
    rep: str
    cards: tuple[tuple[str, str], ...]  # (department as shown, state as shown)


@dataclass(frozen=True)
class PlanLine:
    no: str
    day: date
    week: bool
    rep: str
    purpose: str | None


@dataclass(frozen=True)
class AdviceLine:
    text: str
    author: str
    at: datetime


@dataclass(frozen=True)
class Windows:
    """The score's windows ([customers.score]) for the raw values' labels."""

    purchases_months: int
    trials_days: int
    events_days: int


@dataclass(frozen=True)
class CustomerView:
    """What ``客户`` shows. ``access`` "score": the grade, score and trend only (the marketing department)."""

    name: str
    grade: str | None
    rep: str | None
    access: Access
    windows: Windows
    score: ScoreView | None = None
    trend: tuple[WeekPoint, ...] = ()
    alerts: tuple[AlertLine, ...] = ()
    visits: tuple[VisitLine, ...] = ()
    requests: tuple[RequestLine, ...] = ()
    plans: tuple[PlanLine, ...] = ()
    advice: AdviceLine | None = None


# ---- small formats -------------------------------------------------------------------------------------------


def sparkline(points: tuple[float | None, ...] | list[float | None]) -> str:
    """One block per week on the absolute 0–100 scale (▁ under 12.5 … █ from 87.5); a week without a score: ·.
    The absolute scale keeps a flat 80 looking high and a flat 20 low; the figures beside it give the detail."""
    out = []
    for value in points:
        if value is None:
            out.append(_GAP)
        else:
            out.append(_BLOCKS[min(len(_BLOCKS) - 1, max(0, int(value / (100 / len(_BLOCKS)))))])
    return "".join(out)


def yuan(amount: Decimal, locale: str) -> str:
    """¥12.3 万 (zh, from 10,000 yuan), ¥8,500; English: ¥123,000."""
    if i18n.normalize_locale(locale) == i18n.ZH and amount >= 10_000:
        return f"¥{amount / 10_000:.1f} 万"
    return f"¥{amount:,.0f}"


def points(value: float) -> str:
    return f"{value:.0f}"


def day_label(day: date) -> str:
    return f"{day:%m-%d} 周{WEEKDAYS_ZH[day.weekday()]}"


def one_line(text: str, limit: int = 60) -> str:
    """``text`` on one line (line breaks as spaces), cut at ``limit`` characters with …."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


# ---- the message ---------------------------------------------------------------------------------------------


def _grade_line(view: CustomerView, locale: str) -> Line:
    t = partial(i18n.t, locale)
    current = view.grade or t("customer.no_grade")
    suggested = view.score.suggested_grade if view.score is not None else None
    spans = [Span(text=t("customer.grade_label")), Span(text=t("customer.grade_current", grade=current), bold=True)]
    if suggested and suggested != view.grade:
        spans.append(Span(text=t("customer.grade_suggested", grade=suggested), tone="warn"))
    elif suggested:
        spans.append(Span(text=t("customer.grade_same"), tone="muted"))
    return Line(spans=tuple(spans))


def _score_section(view: CustomerView, locale: str) -> Section:
    t = partial(i18n.t, locale)
    lines = [_grade_line(view, locale)]
    if view.rep:
        lines.append(Line.of(t("customer.rep", rep=view.rep)))
    score = view.score
    if score is None:
        lines.append(Line.of(Span(text=t("customer.no_score"), tone="muted")))
        return Section(title=t("customer.s.score"), lines=tuple(lines))
    w = view.windows
    lines.append(
        Line.of(
            t("customer.score_label"),
            Span(text=t("customer.score_value", score=points(score.score)), bold=True),
            Span(text=t("customer.score_night", day=f"{score.night:%m-%d}"), tone="muted"),
        )
    )
    lines += [
        Line.of(
            t(
                "customer.c.purchases",
                points=points(score.purchases),
                months=w.purchases_months,
                amount=yuan(score.purchases_amount, locale),
            ),
            bullet=True,
        ),
        Line.of(
            t("customer.c.trials", points=points(score.trials), days=w.trials_days, count=score.trials_count),
            bullet=True,
        ),
        Line.of(
            t("customer.c.events", points=points(score.events), days=w.events_days, count=score.attendees),
            bullet=True,
        ),
    ]
    if view.trend:
        figures = " ".join(points(p.score) if p.score is not None else "–" for p in view.trend)
        spark = sparkline([p.score for p in view.trend])
        lines.append(Line.of(t("customer.trend", weeks=len(view.trend), figures=figures, spark=spark)))
    return Section(title=t("customer.s.score"), lines=tuple(lines))


def _none(locale: str) -> tuple[Line, ...]:
    return (Line.of(Span(text=i18n.t(locale, "customer.none"), tone="muted")),)


def _alerts_section(view: CustomerView, locale: str) -> Section:
    lines = tuple(
        Line.of(
            Span(text=("🔴 " if a.level == "red" else "🔵 ") + a.title, tone="warn" if a.level == "red" else "plain"),
            Span(text=f"（{a.night:%m-%d}）", tone="muted"),
            bullet=True,
        )
        for a in view.alerts
    )
    return Section(title=i18n.t(locale, "customer.s.alerts"), lines=lines or _none(locale))


def _visits_section(view: CustomerView, locale: str, tz: ZoneInfo) -> Section:
    t = partial(i18n.t, locale)
    lines = []
    for v in view.visits:
        parts = [f"{v.at.astimezone(tz):%m-%d}", v.rep]
        if v.ward:
            parts.append(v.ward)
        if v.contacts:
            parts.append("、".join(v.contacts))
        head = " · ".join(parts)
        details = []
        if v.objection:
            shown = f"{v.objection}（{v.objection_note}）" if v.objection_note else v.objection
            details.append(t("customer.v.objection", objection=shown))
        if v.topics:
            details.append(t("customer.v.note", note=one_line(v.topics, 40)))
        if v.next_step:
            details.append(t("customer.v.next", next=one_line(v.next_step, 40)))
        lines.append(Line.of(head + (" — " + "；".join(details) if details else ""), bullet=True))
    return Section(title=t("customer.s.visits"), lines=tuple(lines) or _none(locale))


def _requests_section(view: CustomerView, locale: str, tz: ZoneInfo) -> Section:
    lines = []
    for r in view.requests:
        cards = "，".join(f"{dept} {state}" for dept, state in r.cards)
        text = i18n.t(
            locale,
            "customer.r.line",
            no=r.no,
            type_name=r.type_name,
            rep=r.rep,
            day=f"{r.created_at.astimezone(tz):%m-%d}",
            cards=cards,
        )
        lines.append(Line.of(text, bullet=True))
    return Section(title=i18n.t(locale, "customer.s.requests"), lines=tuple(lines) or _none(locale))


def _plans_section(view: CustomerView, locale: str) -> Section:
    lines = []
    for p in view.plans:
        when = i18n.t(locale, "customer.p.week", day=f"{p.day:%m-%d}") if p.week else day_label(p.day)
        purpose = i18n.t(locale, "plan.purpose_suffix", purpose=p.purpose) if p.purpose else ""
        lines.append(Line.of(f"{p.no} {when} · {p.rep}{purpose}", bullet=True))
    return Section(title=i18n.t(locale, "customer.s.plans"), lines=tuple(lines) or _none(locale))


def _advice_section(view: CustomerView, locale: str, tz: ZoneInfo) -> Section:
    a = view.advice
    if a is None:
        return Section(title=i18n.t(locale, "customer.s.advice"), lines=_none(locale))
    head = i18n.t(locale, "customer.a.by", author=a.author, day=f"{a.at.astimezone(tz):%m-%d}")
    return Section(
        title=i18n.t(locale, "customer.s.advice"), lines=(Line.of(Span(text=head, tone="muted"), "💡 " + a.text),)
    )


def render(view: CustomerView, locale: str, tz: ZoneInfo) -> RichText:
    """The whole view: score (with grade and trend), then — with full access — alerts, visits, open requests, plan
    items and the newest advice, each section saying 暂无 when empty."""
    sections = [_score_section(view, locale)]
    if view.access == "full":
        sections += [
            _alerts_section(view, locale),
            _visits_section(view, locale, tz),
            _requests_section(view, locale, tz),
            _plans_section(view, locale),
            _advice_section(view, locale, tz),
        ]
    else:
        sections.append(Section(lines=(Line.of(Span(text=i18n.t(locale, "customer.score_only"), tone="muted")),)))
    return RichText(title="🏥 " + view.name, sections=tuple(sections))
