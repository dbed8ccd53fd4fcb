"""The one-line plan grammar (docs/plans.md): ``计划 明天 浙一 浙二 目的:新品试用``, ``计划 本周 浙一``, and the
manager's ``计划 王磊 明天 浙一`` (the words before the date are left to the caller: a person's name or hospitals).

Pure functions: today is passed in. A bare weekday (周三) is the coming one, as for a request's date.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta

from bot.parsing.request_parser import parse_future_date
from bot.parsing.when import normalise
from storage.vocab import PlanPeriod

# Words for a week item: this week, next week (a week item is stored under its Monday).
_THIS_WEEK = frozenset({"本周", "这周", "本星期", "这星期", "本礼拜", "这礼拜", "这个星期", "thisweek", "week"})
_NEXT_WEEK = frozenset({"下周", "下星期", "下礼拜", "下个星期", "nextweek"})
_PURPOSE_RE = re.compile(r"(?:^|\s)(?:目的|purpose)\s*[:：]\s*(.*)$", re.IGNORECASE)
_SPLIT_RE = re.compile(r"[\s、，,；;]+")


@dataclass(frozen=True)
class PlanWhen:
    """A plan's span: a day, or a week (``day`` is then its Monday)."""

    period: PlanPeriod
    day: date


@dataclass
class PlanLine:
    """What a plan line gave: the span, the words before it (``lead``), the hospital words after it, the purpose."""

    when: PlanWhen | None = None
    lead: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    purpose: str | None = None

    @property
    def words(self) -> list[str]:
        """Every name word, the lead first (when the lead is not a person, it names hospitals too)."""
        return [*self.lead, *self.names]


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def parse_span(text: str, today: date) -> PlanWhen | None:
    """One date word as a plan's span: 本周 / 下周 (a week item), else a day (明天, 周三 = the coming one, 12-05)."""
    word = normalise(text).lower().replace(" ", "")
    if word in _THIS_WEEK:
        return PlanWhen(PlanPeriod.WEEK, monday(today))
    if word in _NEXT_WEEK:
        return PlanWhen(PlanPeriod.WEEK, monday(today) + timedelta(days=7))
    if not word:
        return None
    day = parse_future_date(word, today)
    return PlanWhen(PlanPeriod.DAY, day) if day is not None else None


def split_words(text: str) -> list[str]:
    """Hospital words: split at spaces and list punctuation (浙一、浙二)."""
    return [w for w in _SPLIT_RE.split(normalise(text)) if w]


def parse_plan_line(text: str, today: date) -> PlanLine:
    """The span (the first word that is one), the words before and after it, and ``目的:…`` (to the end)."""
    line = PlanLine()
    body = normalise(text)
    found = _PURPOSE_RE.search(body)
    if found is not None:
        line.purpose = found.group(1).strip() or None
        body = body[: found.start()]
    # English two-word spans are one word here.
    body = re.sub(r"\b(this|next)\s+week\b", r"\1week", body, flags=re.IGNORECASE)
    for word in split_words(body):
        if line.when is None:
            span = parse_span(word, today)
            if span is not None:
                line.when = span
                continue
            line.lead.append(word)
        else:
            line.names.append(word)
    if line.when is None:
        line.names, line.lead = line.lead, []
    return line
