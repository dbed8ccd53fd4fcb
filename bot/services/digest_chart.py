"""The digest's chart (issue 12; docs/digest.md "The chart"): plan completion per rep over the last 7 working days,
as a PNG heat map sent after a day digest that covers more than one rep.

``compute_chart`` reads the figures in one grouped SQL query (plan items by rep and day, done by the one rule of
``bot.services.plan_rule``; valid on SQLite and PostgreSQL); ``render_png`` draws them with Pillow and the bundled
WenQuanYi Micro Hei subset (``bot/assets/fonts``: a fresh machine has no CJK font), or ``[digest] chart_font``.
The same figures give the same bytes. ``chart_intents`` stores the PNG for the digest's recipient (in the attachment
store, only they may read it) and returns the ``SendMedia`` that goes out with the digest's outbox rows.
"""

from __future__ import annotations

import asyncio
import functools
import io
import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont
from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.calendar.workcal import SEARCH_DAYS, get_calendar
from bot.config import Settings
from bot.core.intents import Intent, SendMedia
from bot.infra import i18n
from bot.services import attachments
from bot.services.digest import scope_of
from bot.services.digest_model import Digest
from bot.services.plan_rule import done_clause
from storage.models import PlanItem, User
from storage.vocab import PlanPeriod, PlanStatus, Role

log = logging.getLogger(__name__)

DAYS = 7
FONT = Path(__file__).resolve().parent.parent / "assets" / "fonts" / "wqy-microhei-subset.woff"
# Below this (or below the threshold when that is lower) a cell is red; from it up to the threshold amber.
LOW = 0.5
# At most this many reps are drawn (the lowest first); a line says how many more there are.
MAX_ROWS = 40
_RENDERER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="digest-chart")

# ---- the figures --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChartRep:
    """One rep's row: (plan items, done) per day of ``Chart.days``."""

    user: str
    name: str
    cells: tuple[tuple[int, int], ...]

    @property
    def items(self) -> int:
        return sum(n for n, _ in self.cells)

    @property
    def done(self) -> int:
        return sum(d for _, d in self.cells)

    @property
    def completion(self) -> float | None:
        return self.done / self.items if self.items else None


@dataclass(frozen=True)
class Chart:
    """The matrix: ``days`` (oldest first, the last one the digest's day or the working day before it), ``reps``
    lowest 7-day completion first (reps without plan items last, then by user id)."""

    viewer: str
    viewer_name: str
    everyone: bool
    days: tuple[date, ...]
    reps: tuple[ChartRep, ...]
    threshold: float

    def below(self) -> list[ChartRep]:
        return [r for r in self.reps if r.completion is not None and r.completion < self.threshold]

    @property
    def has_plans(self) -> bool:
        return any(r.items for r in self.reps)


def working_days(settings: Settings, day: date, n: int = DAYS) -> tuple[date, ...]:
    """The last ``n`` working days of the working calendar up to and including ``day``, oldest first (holidays
    left out, 调休 make-up days in)."""
    cal = get_calendar(settings.calendar, settings.org.tz)
    found: list[date] = []
    probe = day
    for _ in range(SEARCH_DAYS):
        if cal.is_working_day(probe):
            found.append(probe)
            if len(found) == n:
                break
        probe -= timedelta(days=1)
    return tuple(reversed(found))


def _sum_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


async def compute_chart(
    session: AsyncSession,
    settings: Settings,
    viewer: User,
    day: date,
    *,
    reps: Mapping[str, str] | None = None,
) -> Chart:
    """The chart of ``viewer``'s scope (``reps``: rep id → name, default ``scope_of(viewer)``) for the last 7
    working days up to ``day``. Each cell is the digest's day completion: day plan items (not cancelled; week items
    are not day items) done ÷ day plan items."""
    everyone = Role.DIRECTOR in (viewer.roles or [])
    if reps is None:
        people = await scope_of(session, viewer)
        reps, everyone = people.names, people.everyone
    days = working_days(settings, day)
    ids = sorted(reps)
    counted: dict[tuple[str, date], tuple[int, int]] = {}
    if ids and days:
        rows = await session.execute(
            select(PlanItem.rep_id, PlanItem.day, func.count(), _sum_if(done_clause()))
            .where(
                PlanItem.rep_id.in_(ids),
                PlanItem.status != PlanStatus.CANCELLED.value,
                PlanItem.period == PlanPeriod.DAY.value,
                PlanItem.day.in_(days),
            )
            .group_by(PlanItem.rep_id, PlanItem.day)
        )
        counted = {(r[0], r[1]): (int(r[2]), int(r[3])) for r in rows}
    lines = [ChartRep(rid, reps[rid], tuple(counted.get((rid, d), (0, 0)) for d in days)) for rid in ids]
    lines.sort(key=lambda r: (r.completion is None, r.completion or 0.0, r.user))
    return Chart(viewer.id, viewer.name, everyone, days, tuple(lines), settings.digest.plan_threshold)


# ---- the picture --------------------------------------------------------------------------------------------

WIDTH = 960
MARGIN = 24
NAME_W = 168
CELL_W = 92
TOTAL_W = WIDTH - 2 * MARGIN - NAME_W - DAYS * CELL_W  # the 7-day column
TITLE_H = 52
SUBTITLE_H = 40
HEADER_H = 68
ROW_H = 48
FOOT_H = 44
GAP = 3  # white space between cells
TITLE_SIZE, TEXT_SIZE, SMALL_SIZE = 32, 24, 22
PALETTE = 64

WHITE = (255, 255, 255)
INK = (34, 34, 34)
MUTED = (110, 110, 110)
# (fill, text) per tone.
TONES = {
    "good": ((214, 240, 222), (22, 104, 56)),
    "mid": ((253, 236, 200), (138, 90, 0)),
    "low": ((249, 214, 213), (166, 27, 27)),
    "none": ((238, 238, 238), (140, 140, 140)),
}
NO_VALUE = "—"
# A code point no font has: what it draws is the font's .notdef glyph (tofu).
_NOT_A_CHARACTER = "\U0010fffd"


def chart_size(rows: int, more: bool) -> tuple[int, int]:
    """The image's size in pixels for ``rows`` rep rows, with the "N more" line or not."""
    height = MARGIN + TITLE_H + SUBTITLE_H + HEADER_H + rows * ROW_H + (FOOT_H if more else 0) + FOOT_H + MARGIN
    return WIDTH, height


@functools.lru_cache(maxsize=16)
def load_font(path: str, size: int) -> ImageFont.FreeTypeFont:
    # The basic layout (no libraqm): the same glyphs and positions on every machine.
    return ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.BASIC)


def font_path(settings: Settings) -> str:
    return settings.digest.chart_font or str(FONT)


def glyph_bitmap(font: ImageFont.FreeTypeFont, ch: str) -> bytes:
    """The pixels ``ch`` draws as, in a square twice the font's size."""
    side = 2 * int(font.size)
    img = Image.new("L", (side, side), 0)
    ImageDraw.Draw(img).text((0, 0), ch, font=font, fill=255)
    return img.tobytes()


def notdef_bitmap(font: ImageFont.FreeTypeFont) -> bytes:
    """What a character the font lacks draws as: its .notdef glyph (tofu)."""
    return glyph_bitmap(font, _NOT_A_CHARACTER)


@functools.lru_cache(maxsize=8192)
def _has_glyph(path: str, ch: str) -> bool:
    if ch.isspace():
        return True
    return glyph_bitmap(load_font(path, TEXT_SIZE), ch) != _notdef(path)


@functools.lru_cache(maxsize=16)
def _notdef(path: str) -> bytes:
    return notdef_bitmap(load_font(path, TEXT_SIZE))


def missing(path: str, text: str) -> set[str]:
    """The characters of ``text`` the font at ``path`` has no glyph for (they would draw as tofu)."""
    return {ch for ch in text if not _has_glyph(path, ch)}


def drawable(path: str, text: str, fallback: str = "") -> str:
    """``text`` if the font has every character of it; else ``fallback`` (a user id for a name) if it has those;
    else ``text`` with the missing characters as "?"."""
    if not missing(path, text):
        return text
    if fallback and not missing(path, fallback):
        return fallback
    return "".join("?" if not _has_glyph(path, ch) else ch for ch in text)


def _fit(font: ImageFont.FreeTypeFont, text: str, width: int) -> str:
    """``text`` cut with "…" to fit ``width`` pixels."""
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "…") > width:
        text = text[:-1]
    return text + "…"


def _pct(value: float) -> str:
    return f"{value * 100:.0f}%"


def _tone(value: float | None, threshold: float) -> str:
    if value is None:
        return "none"
    if value >= threshold:
        return "good"
    return "mid" if value >= min(LOW, threshold) else "low"


def _shown(chart: Chart) -> tuple[tuple[ChartRep, ...], int, int]:
    """The rows drawn, how many reps are left out, and how many of those are below the threshold."""
    shown = chart.reps[:MAX_ROWS]
    rest = chart.reps[MAX_ROWS:]
    below = sum(1 for r in rest if r.completion is not None and r.completion < chart.threshold)
    return shown, len(rest), below


def render_png(chart: Chart, settings: Settings, locale: str | None) -> bytes:
    """The chart as a PNG (``chart_size`` pixels; the same chart gives the same bytes)."""
    lang = i18n.normalize_locale(locale)
    path = font_path(settings)
    title_font, font, small = load_font(path, TITLE_SIZE), load_font(path, TEXT_SIZE), load_font(path, SMALL_SIZE)
    shown, more, more_below = _shown(chart)
    width, height = chart_size(len(shown), more > 0)
    img = Image.new("RGB", (width, height), WHITE)
    draw = ImageDraw.Draw(img)
    threshold = _pct(chart.threshold)

    def text(xy: tuple[float, float], value: str, f: ImageFont.FreeTypeFont, fill: tuple[int, int, int]) -> None:
        draw.text(xy, drawable(path, value), font=f, fill=fill)

    def centred(box: tuple[int, int, int, int], value: str, f: ImageFont.FreeTypeFont, fill: tuple[int, ...]) -> None:
        draw.text(((box[0] + box[2]) / 2, (box[1] + box[3]) / 2), value, font=f, fill=fill, anchor="mm")

    y = MARGIN
    text((MARGIN, y), i18n.t(lang, "chart.title", n=DAYS), title_font, INK)
    y += TITLE_H
    who = (
        i18n.t(lang, "chart.everyone")
        if chart.everyone
        else i18n.t(lang, "chart.team_of", name=drawable(path, chart.viewer_name, chart.viewer))
    )
    last = chart.days[-1] if chart.days else None
    subtitle = i18n.t(
        lang,
        "chart.subtitle",
        who=who,
        n=len(chart.reps),
        date=last.isoformat() if last else "",
        weekday=i18n.t(lang, f"digest.weekday.{last.isoweekday()}") if last else "",
    )
    text((MARGIN, y), _fit(small, subtitle, width - 2 * MARGIN), small, MUTED)
    y += SUBTITLE_H

    # The header: each day as 12-01 over 周二, then the 7-day column.
    x0 = MARGIN + NAME_W
    for i, d in enumerate(chart.days):
        left = x0 + i * CELL_W
        centred((left, y, left + CELL_W, y + HEADER_H // 2), d.strftime("%m-%d"), small, MUTED)
        weekday = i18n.t(lang, f"digest.weekday.{d.isoweekday()}")
        centred((left, y + HEADER_H // 2, left + CELL_W, y + HEADER_H), weekday, small, MUTED)
    total_left = x0 + DAYS * CELL_W
    centred((total_left, y, total_left + TOTAL_W, y + HEADER_H), i18n.t(lang, "chart.total", n=DAYS), small, MUTED)
    y += HEADER_H

    for rep in shown:
        name = _fit(font, drawable(path, rep.name, rep.user), NAME_W - 12)
        draw.text((MARGIN, y + ROW_H / 2), name, font=font, fill=INK, anchor="lm")
        cells = [(n, d) for n, d in rep.cells] + [(rep.items, rep.done)]
        for i, (items, done) in enumerate(cells):
            left = x0 + i * CELL_W
            right = left + (CELL_W if i < DAYS else TOTAL_W)
            value = done / items if items else None
            fill, ink = TONES[_tone(value, chart.threshold)]
            box = (left + GAP, y + GAP, right - GAP, y + ROW_H - GAP)
            draw.rectangle(box, fill=fill)
            centred(box, NO_VALUE if value is None else _pct(value), font, ink)
        y += ROW_H

    if more:
        key = "chart.more_below" if more_below else "chart.more_ok"
        text((MARGIN, y + 8), i18n.t(lang, key, n=more, below=more_below, threshold=threshold), small, MUTED)
        y += FOOT_H

    # The legend: a swatch and its words per tone.
    low = _pct(min(LOW, chart.threshold))
    legend = [("good", i18n.t(lang, "chart.legend_good", threshold=threshold))]
    if chart.threshold > LOW:
        legend.append(("mid", i18n.t(lang, "chart.legend_mid", low=low, threshold=threshold)))
    legend.append(("low", i18n.t(lang, "chart.legend_low", low=low)))
    legend.append(("none", i18n.t(lang, "chart.legend_none", dash=NO_VALUE)))
    x, top = float(MARGIN), y + 10
    for tone, words in legend:
        draw.rectangle((x, top + 2, x + 20, top + 22), fill=TONES[tone][0], outline=TONES[tone][1])
        x += 28
        text((x, top), words, small, MUTED)
        x += small.getlength(words) + 28

    # 64 colours hold the flat fills and the text's anti-aliasing: a third of the bytes of the RGB image.
    paletted = img.quantize(colors=PALETTE, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    out = io.BytesIO()
    paletted.save(out, format="PNG", compress_level=6)
    return out.getvalue()


def caption(chart: Chart, locale: str | None) -> str:
    """What the image says in one line (what a channel that cannot show it says instead)."""
    below = len(chart.below())
    threshold = _pct(chart.threshold)
    if below:
        return i18n.t(locale, "chart.caption_below", n=DAYS, below=below, threshold=threshold)
    return i18n.t(locale, "chart.caption_ok", n=DAYS, threshold=threshold)


# ---- with the digest ------------------------------------------------------------------------------------------


def wanted(settings: Settings, digest: Digest) -> bool:
    """A chart goes with a day digest of more than one rep (a manager's or director's), when ``[digest] chart``."""
    return settings.digest.chart and digest.scope.period == "day" and len(digest.scope.reps) > 1


@dataclass(frozen=True)
class Drawn:
    """A chart drawn for one viewer: the PNG and its caption, ready to store and send (``send``)."""

    viewer_id: str
    day: date
    png: bytes
    caption: str


async def draw(session: AsyncSession, settings: Settings, viewer: User, digest: Digest) -> Drawn | None:
    """The chart for ``digest``, drawn (a read: no transaction of the caller's is held while drawing). None when no
    chart is wanted, no rep had a day plan in the 7 working days, or it cannot be drawn (a broken font file: the
    digest still goes out, without its picture)."""
    if not wanted(settings, digest):
        return None
    reps = {r.user: r.name for r in digest.reps}
    chart = await compute_chart(session, settings, viewer, digest.scope.end, reps=reps)
    if not chart.has_plans:
        return None
    try:
        # Off the event loop (drawing a 40-row chart takes ~0.1 s); one thread, as FreeType faces are not shared
        # safely between threads.
        data = await asyncio.get_running_loop().run_in_executor(_RENDERER, render_png, chart, settings, viewer.locale)
    except Exception:
        log.exception("digest chart for %s could not be drawn", viewer.id)
        return None
    return Drawn(viewer.id, digest.scope.end, data, caption(chart, viewer.locale))


async def send(
    session: AsyncSession, settings: Settings, viewer: User, drawn: Drawn, channel: str, now: datetime
) -> Sequence[Intent]:
    """Store ``drawn`` in the attachment store for ``viewer`` (only they may read it) and pass it on as an image,
    in the caller's transaction (the digest's)."""
    filename = i18n.t(viewer.locale, "chart.filename", date=drawn.day.isoformat())
    row = await attachments.store_made(session, settings, viewer.id, filename, drawn.png, now)
    return (
        SendMedia(
            channel=channel,
            user_ids=(viewer.id,),
            media_type="image",
            media_id=attachments.media_id(row.token),
            source_channel=attachments.MADE,
            caption=drawn.caption,
        ),
    )


async def chart_intents(
    session: AsyncSession,
    settings: Settings,
    viewer: User,
    digest: Digest,
    channel: str,
    now: datetime,
) -> Sequence[Intent]:
    """The chart for ``digest`` (sent right after it, in the caller's transaction): ``draw`` then ``send``. Nothing
    when no chart is wanted or no rep had a day plan in the 7 working days."""
    drawn = await draw(session, settings, viewer, digest)
    return () if drawn is None else await send(session, settings, viewer, drawn, channel, now)
