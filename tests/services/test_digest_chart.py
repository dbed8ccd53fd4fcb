"""The digest's chart (bot/services/digest_chart.py): the matrix of plan completion per rep and working day against
values worked out by hand, the PNG it draws, and Chinese text that really renders with the bundled font.

Data: tests/digest_data.py (the clock at Tuesday 2026-12-01 18:00 Shanghai) plus the day plans of the week before,
below. The working calendar: Monday–Friday without the package's holidays, Thursday 11-26 a holiday and Sunday 11-29
a 调休 make-up working day; so the last 7 working days up to 12-01 are 11-23, 11-24, 11-25, 11-27, 11-29, 11-30,
12-01.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest
from PIL import Image, ImageFont
from sqlalchemy import func, select

from bot.config import ConfigError, Settings
from bot.core.intents import SendMedia
from bot.services import attachments, digest_chart
from bot.services.digest import compute_digest
from bot.services.digest_chart import FONT, Chart, ChartRep, chart_size, compute_chart, render_png
from bot.services.plan_rule import span
from storage.db import Database
from storage.models import Attachment, Customer, PlanItem, User, Visit
from storage.vocab import PlanPeriod, PlanStatus
from tests.conftest import make_settings
from tests.digest_data import CREATED, CUSTOMERS, DAY, NOW, TZ, local, seed

HOLIDAY = date(2026, 11, 26)
MAKE_UP = date(2026, 11, 29)
DAYS = (
    date(2026, 11, 23),
    date(2026, 11, 24),
    date(2026, 11, 25),
    date(2026, 11, 27),
    MAKE_UP,
    date(2026, 11, 30),
    DAY,
)

# (rep, customer, day, status) — day items added to tests/digest_data.PLANS.
MORE_PLANS = [
    ("r1", "C1", HOLIDAY, PlanStatus.OPEN),  # a holiday: not a column (though done by a visit that day)
    ("r1", "C1", MAKE_UP, PlanStatus.OPEN),  # the make-up Sunday: done
    ("r1", "C2", MAKE_UP, PlanStatus.OPEN),  # not done
    ("r2", "C3", date(2026, 11, 23), PlanStatus.OPEN),  # done
    ("r2", "C4", date(2026, 11, 24), PlanStatus.OPEN),  # not done: r2 went on 11-25, outside the item's day
    ("r3", "C7", date(2026, 11, 27), PlanStatus.OPEN),  # done
    ("r3", "C8", date(2026, 11, 27), PlanStatus.OPEN),  # not done: r1 went there, not r3
    ("r3", "C9", date(2026, 11, 27), PlanStatus.OPEN),  # not done
    ("r4", "C6", date(2026, 11, 20), PlanStatus.OPEN),  # before the 7 working days
    ("r4", "C6", date(2026, 11, 30), PlanStatus.CANCELLED),  # cancelled: never counts
]
# (rep, customer, local visit time)
MORE_VISITS = [
    ("r1", "C1", local(11, 26, 10)),
    ("r1", "C1", local(11, 29, 10)),
    ("r2", "C3", local(11, 23, 15)),
    ("r2", "C4", local(11, 25, 10)),
    ("r3", "C7", local(11, 27, 9)),
    ("r1", "C8", local(11, 27, 11)),
]
NONE = (0, 0)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    await seed(database)
    async with database.transaction() as s:
        by_name = {c.name: c.id for c in await s.scalars(select(Customer))}
        ids = {key: by_name[name] for key, name, _, _ in CUSTOMERS}
        for rep, cust, day, status in MORE_PLANS:
            first, starts, ends = span(PlanPeriod.DAY, day, TZ)
            s.add(
                PlanItem(
                    rep_id=rep, customer_id=ids[cust], period="day", day=first, starts_at=starts,
                    ends_at=ends, status=status.value, source="chat", created_at=CREATED, updated_at=CREATED,
                )
            )  # fmt: skip
        for rep, cust, when in MORE_VISITS:
            s.add(
                Visit(
                    rep_id=rep, customer_id=ids[cust], visited_at=when, source_channel="console",
                    created_at=when, updated_at=when,
                )
            )  # fmt: skip
    yield database
    await database.dispose()


@pytest.fixture
def settings(db_url: str) -> Settings:
    calendar = {"use_chinese_holidays": False, "extra_closed": [HOLIDAY], "extra_open": [MAKE_UP]}
    return make_settings(db_url, calendar=calendar)


async def chart_of(db: Database, settings: Settings, user_id: str, day: date = DAY) -> Chart:
    async with db.read() as s:
        viewer = await s.get(User, user_id)
        assert viewer is not None
        return await compute_chart(s, settings, viewer, day)


# ---- the figures ----------------------------------------------------------------------------------------------


def test_the_last_seven_working_days_skip_the_holiday_and_keep_the_make_up_day(settings: Settings) -> None:
    assert digest_chart.working_days(settings, DAY) == DAYS
    # On a day off the chart ends at the working day before it (Saturday 11-28 → Friday 11-27).
    assert digest_chart.working_days(settings, date(2026, 11, 28))[-1] == date(2026, 11, 27)


async def test_a_managers_matrix_by_hand(db: Database, settings: Settings) -> None:
    chart = await chart_of(db, settings, "m1")
    assert chart.days == DAYS and not chart.everyone and chart.viewer_name == "陈经理"
    # Columns 11-23 11-24 11-25 11-27 11-29 11-30 12-01; (day items, done). 12-01 from tests/digest_data.py: r1 C1
    # done and C2 not (its cancelled C3 and its week item of 11-30 are not day items), r2 C3 done and C4 not, r4 C6
    # done. r3: 1 of 3 on 11-27 → 33 %, lowest first; r1 2/4 and r2 2/4 (50 %, by user id); r4 1/1.
    assert chart.reps == (
        ChartRep("r3", "张伟", (NONE, NONE, NONE, (3, 1), NONE, NONE, NONE)),
        ChartRep("r1", "王磊", (NONE, NONE, NONE, NONE, (2, 1), NONE, (2, 1))),
        ChartRep("r2", "李娜", ((1, 1), (1, 0), NONE, NONE, NONE, NONE, (2, 1))),
        ChartRep("r4", "赵敏", (NONE, NONE, NONE, NONE, NONE, NONE, (1, 1))),
    )
    assert [r.completion for r in chart.reps] == [pytest.approx(1 / 3), 0.5, 0.5, 1.0]
    assert [r.user for r in chart.below()] == ["r3", "r1", "r2"]
    assert digest_chart.caption(chart, "zh-CN") == "计划完成率图：近7个工作日，3 人低于 92%"
    assert digest_chart.caption(chart, "en") == "Plan completion chart: last 7 working days, 3 below 92%"


async def test_a_directors_matrix_has_everyone_and_reps_without_plans_last(db: Database, settings: Settings) -> None:
    async with db.transaction() as s:
        s.add(User(id="r6", name="钱多", roles=["rep"], manager_id="m3", created_at=CREATED, updated_at=CREATED))
    chart = await chart_of(db, settings, "d1")
    assert chart.everyone
    # r5 (the other team): 12-01 C5 done. r6 has no plan: no completion, last.
    assert [r.user for r in chart.reps] == ["r3", "r1", "r2", "r4", "r5", "r6"]
    assert chart.reps[4].cells[-1] == (1, 1) and chart.reps[5].completion is None


async def test_the_chart_of_a_day_digest_matches_the_digests_completion(db: Database, settings: Settings) -> None:
    async with db.read() as s:
        viewer = await s.get(User, "m1")
        assert viewer is not None
        d = await compute_digest(s, settings, viewer, period="day", day=DAY, now=NOW)
        chart = await compute_chart(s, settings, viewer, DAY)
    last_day = {r.user: r.cells[-1] for r in chart.reps}
    assert {r.user: (r.plan_items, r.plan_done) for r in d.reps} == last_day


# ---- the picture ------------------------------------------------------------------------------------------------


def made_chart(n: int, name: str = "王磊") -> Chart:
    reps = tuple(ChartRep(f"r{i:02d}", name, tuple((4, (i + k) % 5) for k in range(7))) for i in range(n))
    return Chart("m1", "陈经理", False, DAYS, reps, 0.92)


def decoded(png: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(png))
    img.load()
    return img


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize(("reps", "height"), [(1, 300), (4, 444), (40, 2172), (45, 2216)])
def test_the_png_decodes_at_the_size_for_its_rows(settings: Settings, reps: int, height: int) -> None:
    # 24 margin + 52 title + 40 subtitle + 68 header + 48 a row (40 at most) + 44 the "N more" line + 44 legend + 24.
    png = render_png(made_chart(reps), settings, "zh-CN")
    img = decoded(png)
    assert (img.format, img.size) == ("PNG", (960, height))
    assert chart_size(min(reps, 40), reps > 40) == (960, height)
    assert render_png(made_chart(reps), settings, "zh-CN") == png  # the same chart, the same bytes


@pytest.mark.parametrize("backend", ["sqlite"])
def test_cells_take_the_colour_of_their_completion(settings: Settings) -> None:
    rep = ChartRep("r1", "王磊", ((1, 1), (2, 1), (5, 1), NONE, (1, 1), (1, 1), (1, 1)))
    img = decoded(render_png(Chart("m1", "陈经理", False, DAYS, (rep,), 0.92), settings, "zh-CN")).convert("RGB")
    top = 24 + 52 + 40 + 68
    # Sample each cell near its top-left corner (inside the cell, away from the centred text).
    colours = [img.getpixel((24 + 168 + i * 92 + 8, top + 8)) for i in range(4)]
    good, mid, low, none = (digest_chart.TONES[k][0] for k in ("good", "mid", "low", "none"))
    assert colours == [good, mid, low, none]  # 100 %, 50 %, 20 %, no plan


def test_chinese_labels_render_with_the_bundled_font_not_as_tofu() -> None:
    # The bundled font, as shipped: a font without CJK would draw each of these as its .notdef box.
    font = ImageFont.truetype(str(FONT), 24)
    notdef = digest_chart.notdef_bitmap(font)
    blank = digest_chart.glyph_bitmap(font, " ")
    for ch in "王磊李娜计划完成率周二近个工作日达标（）：·—":
        bitmap = digest_chart.glyph_bitmap(font, ch)
        assert bitmap != notdef and bitmap != blank, ch
    assert digest_chart.missing(str(FONT), "计划完成率 · 近7个工作日 欧阳娜娜 12-01 周二 ≥ 92%") == set()
    # The check itself: an emoji is not in the font and draws as .notdef.
    assert digest_chart.glyph_bitmap(font, "😀") == notdef
    assert digest_chart.missing(str(FONT), "孙丽😀") == {"😀"}


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_name_with_a_character_the_font_lacks_shows_the_user_id(settings: Settings) -> None:
    path = str(FONT)
    assert digest_chart.drawable(path, "孙丽😀", "r5") == "r5"
    assert digest_chart.drawable(path, "孙丽", "r5") == "孙丽"
    assert digest_chart.drawable(path, "😀丽", "😀") == "?丽"  # no usable fallback either
    cells = tuple((1, 1) for _ in range(7))
    with_emoji = Chart("m1", "陈经理", False, DAYS, (ChartRep("r5", "孙丽😀", cells),), 0.92)
    as_id = Chart("m1", "陈经理", False, DAYS, (ChartRep("r5", "r5", cells),), 0.92)
    assert render_png(with_emoji, settings, "zh-CN") == render_png(as_id, settings, "zh-CN")


@pytest.mark.parametrize("backend", ["sqlite"])
def test_chart_font_must_be_a_readable_font(db_url: str, tmp_path: Path) -> None:
    def refused(path: Path) -> str:
        with pytest.raises(ConfigError) as caught:
            make_settings(db_url, digest={"chart_font": str(path)})
        return " ".join(str(i) for i in caught.value.issues)

    assert "no such font file" in refused(tmp_path / "missing.ttf")
    junk = tmp_path / "junk.ttf"
    junk.write_bytes(b"not a font")
    assert "not a font" in refused(junk)
    other = tmp_path / "other.woff"
    other.write_bytes(FONT.read_bytes())
    settings = make_settings(db_url, digest={"chart_font": str(other)})
    assert digest_chart.font_path(settings) == str(other)
    assert decoded(render_png(made_chart(2), settings, "en")).size == (960, 348)


# ---- with the digest ------------------------------------------------------------------------------------------


async def intents_for(
    db: Database, settings: Settings, user_id: str, rep_id: str | None = None, period: str = "day"
) -> list[SendMedia]:
    async with db.transaction() as s:
        viewer = await s.get(User, user_id)
        assert viewer is not None
        d = await compute_digest(s, settings, viewer, period=period, day=DAY, now=NOW, rep_id=rep_id)  # type: ignore[arg-type]
        made = await digest_chart.chart_intents(s, settings, viewer, d, "console", NOW)
    assert all(isinstance(i, SendMedia) for i in made)
    return [i for i in made if isinstance(i, SendMedia)]


async def test_a_team_day_digest_brings_one_chart_stored_for_the_recipient(db: Database, settings: Settings) -> None:
    [media] = await intents_for(db, settings, "m1")
    assert (media.user_ids, media.media_type, media.source_channel) == (("m1",), "image", attachments.MADE)
    assert media.caption == "计划完成率图：近7个工作日，3 人低于 92%"
    token = attachments.token_of(media.media_id)
    assert token is not None
    async with db.read() as s:
        row = await attachments.by_token(s, token)
    assert row is not None
    assert (row.owner_id, row.filename, row.content_type, row.card_id) == (
        "m1",
        "计划完成率-2026-12-01.png",
        "image/png",
        None,
    )
    # In the attachment store (a folder), so every channel passes the same file on (WeCom uploads it).
    data = await attachments.store_for(settings).read(row.storage_key)
    assert decoded(data).size == (960, 444)
    # Asked again with nothing new: the same file, not a second copy.
    [again] = await intents_for(db, settings, "m1")
    assert again.media_id == media.media_id
    async with db.read() as s:
        assert await s.scalar(select(func.count()).select_from(Attachment)) == 1


async def test_no_chart_for_one_rep_a_week_chart_off_or_no_plans(db: Database, settings: Settings, db_url: str) -> None:
    assert await intents_for(db, settings, "m1", rep_id="r1") == []
    assert await intents_for(db, settings, "m1", period="week") == []
    off = make_settings(db_url, digest={"chart": False}, calendar=settings.calendar.model_dump())
    assert await intents_for(db, off, "m1") == []
    async with db.transaction() as s:
        for item in await s.scalars(select(PlanItem)):
            await s.delete(item)
    assert await intents_for(db, settings, "m1") == []
    async with db.read() as s:
        assert await s.scalar(select(func.count()).select_from(Attachment)) == 0
