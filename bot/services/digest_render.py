"""The digest as rich text (issue 12; docs/digest.md "Templates"): ``render_digest`` runs the Jinja2 template
``digest.j2`` (cards/templates/, or the same name in ``[digest] templates_dir``) and reads its output as a
``cards.rich.RichText``. Every word comes from the message catalogue (``t(...)`` in the template).

The template writes one line per item, each starting with a marker: ``# `` the title, ``## `` a section,
``---`` an untitled section, ``- `` a bullet, ``> `` a plain line, ``|| a | b`` a table header, ``| a | b`` a
table row. Spans are marked with ``bold(x)``, ``warn(x)``, ``good(x)``, ``muted(x)``. Data (names, objections)
can never become markup: every ``{{ … }}`` value not made by those helpers has the marker characters replaced.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any, cast

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined

from bot.config import Settings
from bot.infra import i18n
from bot.services.customer_alerts import alert_line
from bot.services.digest_model import AlertLine, Digest
from cards.rich import Line, RichText, Section, Span, Table, Tone

BUILTIN_TEMPLATES = Path(__file__).resolve().parent.parent.parent / "cards" / "templates"
TEMPLATE = "digest.j2"
_OPEN, _CLOSE = "⟦", "⟧"
_MARK = re.compile(r"⟦(/?)(b|warn|good|muted)⟧")
_DATA = str.maketrans({_OPEN: "[", _CLOSE: "]", "|": "｜", "\n": " ", "\r": " "})


class _Marked(str):
    """Markup made by the template helpers: passed through as is."""


def _data(value: Any) -> str:
    return value if isinstance(value, _Marked) else str(value).translate(_DATA)


def _wrap(tag: str) -> Any:
    def helper(value: Any) -> _Marked:
        return _Marked(f"{_OPEN}{tag}{_CLOSE}{_data(value)}{_OPEN}/{tag}{_CLOSE}")

    return helper


@functools.lru_cache(maxsize=8)
def _environment(templates_dir: str) -> Environment:
    loaders = [FileSystemLoader(templates_dir)] if templates_dir else []
    env = Environment(
        loader=ChoiceLoader([*loaders, FileSystemLoader(str(BUILTIN_TEMPLATES))]),
        undefined=StrictUndefined,
        finalize=_data,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.globals.update(bold=_wrap("b"), warn=_wrap("warn"), good=_wrap("good"), muted=_wrap("muted"))
    return env


def _spans(text: str) -> tuple[Span, ...]:
    spans: list[Span] = []
    bold = False
    tones: list[Tone] = ["plain"]
    pos = 0
    for m in _MARK.finditer(text):
        if m.start() > pos:
            spans.append(Span(text=text[pos : m.start()], bold=bold, tone=tones[-1]))
        closing, tag = m.group(1) == "/", m.group(2)
        if tag == "b":
            bold = not closing
        elif closing:
            if len(tones) > 1:
                tones.pop()
        else:
            tones.append(cast(Tone, tag))
        pos = m.end()
    if pos < len(text):
        spans.append(Span(text=text[pos:], bold=bold, tone=tones[-1]))
    return tuple(s for s in spans if s.text)


def _cells(text: str) -> tuple[str, ...]:
    return tuple("".join(s.text for s in _spans(c.strip())) for c in text.split("|"))


def parse_rich(text: str) -> RichText:
    """The template's marked-up lines as ``RichText`` (sections without content are dropped)."""
    title = ""
    sections: list[dict[str, Any]] = []

    def current() -> dict[str, Any]:
        if not sections:
            sections.append({"title": "", "lines": [], "header": None, "rows": []})
        return sections[-1]

    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line == "---":
            sections.append({"title": "", "lines": [], "header": None, "rows": []})
        elif line.startswith("## "):
            sections.append({"title": line[3:].strip(), "lines": [], "header": None, "rows": []})
        elif line.startswith("# "):
            title = "".join(s.text for s in _spans(line[2:].strip()))
        elif line.startswith("|| "):
            current()["header"] = _cells(line[3:])
        elif line.startswith("| "):
            current()["rows"].append(_cells(line[2:]))
        elif line.startswith("- "):
            current()["lines"].append(Line(spans=_spans(line[2:].strip()), bullet=True))
        else:
            current()["lines"].append(Line(spans=_spans(line.removeprefix("> ").strip())))
    out = []
    for s in sections:
        table = Table(header=s["header"] or (), rows=tuple(s["rows"])) if s["header"] or s["rows"] else None
        if s["lines"] or table is not None:
            out.append(Section(title=s["title"], lines=tuple(s["lines"]), table=table))
    return RichText(title=title, sections=tuple(out))


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def render_digest(digest: Digest, settings: Settings, locale: str, *, detail: bool = False) -> RichText:
    """The digest as ``viewer`` reads it in ``locale``: the first screen (exceptions and totals), plus per rep and
    per department when ``detail``. Reused by the scheduled push and the follow-up cards."""
    lang = i18n.normalize_locale(locale)
    en = lang == i18n.EN
    cfg = settings.digest

    def t(key: str, **params: Any) -> _Marked:
        # The catalogue's text is markup-free; its parameters are data unless a helper marked them.
        return _Marked(i18n.t(lang, key, **{k: _data(v) for k, v in params.items()}))

    def minutes(value: float | None) -> str:
        if value is None:
            return "—"
        if value < 60:
            # Half a minute up (52.5 → 53), not to the even neighbour.
            return t("digest.minutes", n=int(value + 0.5))
        return t("digest.hours", n=f"{value / 60:.1f}".removesuffix(".0"))

    def department(key: str) -> str:
        dept = settings.departments.get(key)
        return key if dept is None else (dept.name_en if en else dept.name_zh)

    def tone(value: float | None) -> Tone:
        return "plain" if value is None else ("warn" if value < cfg.plan_threshold else "good")

    def customer_alert(a: AlertLine, with_rep: bool) -> _Marked:
        line = alert_line(a.kind, a.level, a.detail, lang)
        if with_rep:
            rep = t("alerts.digest.rep", name=a.rep_name or a.rep) if a.rep else t("alerts.digest.no_rep")
            line = f"{line}{rep}"
        return _Marked(_wrap("warn")(line) if a.level == "red" else _data(line))

    alert_counts = i18n.t(lang, "digest.sep").join(
        i18n.t(lang, "alerts.digest.count", title=c.title, n=c.count) for c in digest.alerts
    )
    target_minutes = cfg.first_response_target_hours * 60
    scope = digest.scope
    weekday = t(f"digest.weekday.{scope.start.isoweekday()}")
    period = t(
        f"digest.title.{scope.period}",
        date=scope.start.isoformat(),
        weekday=weekday,
        end=scope.end.strftime("%m-%d"),
        month=scope.start.strftime("%Y-%m"),
    )
    text = (
        _environment(cfg.templates_dir)
        .get_template(TEMPLATE)
        .render(
            d=digest,
            detail=detail,
            t=t,
            pct=_pct,
            minutes=minutes,
            department=department,
            completion_tone=tone,
            threshold=_pct(cfg.plan_threshold),
            target_hours=f"{cfg.first_response_target_hours:g}",
            target_minutes=target_minutes,
            gap_days=cfg.a_customer_gap_days,
            frequency=settings.plans.frequency.get("A", 0),
            period=period,
            alert_line=customer_alert,
            alerts_total=sum(c.count for c in digest.alerts),
            alert_counts=alert_counts,
        )
    )
    return parse_rich(text)
