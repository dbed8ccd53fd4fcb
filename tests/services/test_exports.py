"""Exports (bot/services/exports.py, docs/exports.md): each kind's headers in Chinese and English, values in the
org's zone and by name, the --from/--to bounds on org days, the --team scope, the CSV BOM and the injection guard,
XLSX with the same rows, the export's own audit row, and `salesbot export` on the command line.

The demo org: rep01 王磊 and rep02 李娜 report to mgr01 陈静; log01 is in logistics.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook
from sqlalchemy import select

from bot.cli import main
from bot.config import Settings
from bot.services import exports
from storage.db import Database
from storage.models import AuditLog, Customer, PlanItem, SupportRequest, TaskCard, Visit
from tests.conftest import make_settings

ZJU1 = "浙江大学医学院附属第一医院"
# 2026-11-01 00:30 in Shanghai is 2026-10-31 16:30 UTC: an October UTC day, a November org day.
FIRST = datetime(2026, 10, 31, 16, 30, tzinfo=UTC)
# 2026-11-30 23:50 in Shanghai.
LAST = datetime(2026, 11, 30, 15, 50, tzinfo=UTC)
# 2026-12-01 00:10 in Shanghai: outside November.
AFTER = datetime(2026, 11, 30, 16, 10, tzinfo=UTC)
NOW = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)


def visit(rep: str, customer_id: int, at: datetime, **kw: Any) -> Visit:
    return Visit(
        rep_id=rep,
        customer_id=customer_id,
        visited_at=at,
        source_channel="wecom",
        created_at=at,
        updated_at=at,
        ward="骨科",
        contacts=["张主任"],
        topics=kw.pop("topics", "新品介绍"),
        objection="价格",
        location_status="ok",
        **kw,
    )


@pytest.fixture
async def seeded(db: Database) -> int:
    async with db.transaction() as s:
        cid = await s.scalar(select(Customer.id).where(Customer.name == ZJU1))
        assert cid is not None
        s.add_all(
            [
                visit("rep01", cid, FIRST),
                visit("rep02", cid, LAST, topics='=HYPERLINK("http://x")\x01' + "长" * 40000),
                visit("rep01", cid, AFTER),
                visit("log01", cid, FIRST),
            ]
        )
        req = SupportRequest(
            type_key="trial",
            rep_id="rep01",
            customer_id=cid,
            ward="骨科",
            fields={"product": "骨钉", "qty": 2},
            status="open",
            source_channel="console",
            created_at=FIRST,
            updated_at=FIRST,
        )
        s.add(req)
        await s.flush()
        s.add(
            TaskCard(
                request_id=req.id,
                rep_id="rep01",
                department="logistics",
                ref="T1",
                title="骨钉试用",
                state="claimed",
                holder_id="log01",
                first_response_hours=2,
                complete_hours=24,
                respond_by=LAST,
                due_at=LAST,
                created_at=FIRST,
                state_since=FIRST,
                updated_at=FIRST,
            )
        )
        s.add(
            PlanItem(
                rep_id="rep02",
                customer_id=cid,
                period="day",
                day=date(2026, 11, 30),
                purpose="送样",
                starts_at=LAST,
                ends_at=LAST,
                status="open",
                source="console",
                created_by="rep02",
                created_at=FIRST,
                updated_at=FIRST,
            )
        )
        s.add(
            AuditLog(
                at=FIRST,
                actor_id="rep01",
                channel="wecom",
                action="create",
                entity="visit",
                entity_id="1",
                changes={"ward": [None, "骨科"]},
            )
        )
    return int(cid)


def url_of(db: Database) -> str:
    """The database's URL as the config takes it (the engine names its SQLite driver ``sqlite+inline``)."""
    return db.engine.url.render_as_string(hide_password=False).replace("sqlite+inline:", "sqlite+aiosqlite:")


def settings_for(db: Database) -> Settings:
    return make_settings(url_of(db))


async def export(db: Database, kind: str, fmt: str = "csv", **kw: Any) -> tuple[bytes, int]:
    spec = exports.make_spec(kind, kw.pop("start", "2026-11-01"), kw.pop("end", "2026-11-30"), fmt, **kw)
    out = io.BytesIO()
    async with db.read() as s:
        n = await exports.write_export(s, settings_for(db), spec, out)
    return out.getvalue(), n


def read_csv(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf"), "CSV starts with a UTF-8 BOM"
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


@pytest.mark.parametrize(
    ("kind", "zh", "en"),
    [
        ("visits", ["编号", "拜访时间", "代表账号", "代表", "客户编号", "客户"], ["ID", "Visited at", "Rep ID", "Rep"]),
        ("requests", ["编号", "提交时间", "类型", "代表账号", "代表"], ["ID", "Submitted at", "Type", "Rep ID"]),
        ("cards", ["编号", "任务号", "创建时间"], ["ID", "Ref", "Created at"]),
        ("audit", ["编号", "时间", "操作人账号", "操作人", "渠道"], ["ID", "At", "Actor ID", "Actor", "Channel"]),
        ("plans", ["编号", "日期", "周期", "代表账号", "代表"], ["ID", "Day", "Period", "Rep ID", "Rep"]),
    ],
)
async def test_each_kind_has_chinese_headers_and_english_ones_on_request(
    db: Database, seeded: int, kind: str, zh: list[str], en: list[str]
) -> None:
    data, n = await export(db, kind)
    header = read_csv(data)[0]
    assert header[: len(zh)] == zh
    data, _ = await export(db, kind, lang="en")
    assert read_csv(data)[0][: len(en)] == en
    assert n >= 1


async def test_visits_are_org_days_in_the_org_zone_by_name_and_the_range_includes_both_ends(
    db: Database, seeded: int
) -> None:
    data, n = await export(db, "visits")
    table = read_csv(data)
    assert n == 3  # rep01 on 11-01 00:30, rep02 on 11-30 23:50, log01; not 12-01 00:10
    rows = [dict(zip(table[0], r, strict=True)) for r in table[1:]]
    first = rows[0]
    assert first["拜访时间"] == "2026-11-01 00:30"
    assert (first["代表账号"], first["代表"], first["客户"]) == ("rep01", "王磊", ZJU1)
    assert first["联系人"] == "张主任"
    assert first["定位"] == "已定位"
    assert first["来源渠道"] == "企业微信"
    assert first["已锁定"] == "是"
    assert rows[-1]["拜访时间"] == "2026-11-30 23:50"
    data, _ = await export(db, "visits", lang="en")
    en = read_csv(data)
    assert en[1][en[0].index("Channel")] == "WeCom"
    # One day: only the 30th.
    _, n = await export(db, "visits", start="2026-11-30", end="2026-11-30")
    assert n == 1


async def test_a_team_is_the_manager_and_everyone_below(db: Database, seeded: int) -> None:
    data, n = await export(db, "visits", team="mgr01")
    assert n == 2
    assert {r[2] for r in read_csv(data)[1:]} == {"rep01", "rep02"}
    _, n = await export(db, "visits", team="dir01")  # through mgr01, any depth
    assert n == 2
    _, n = await export(db, "visits", team="log_head")
    assert n == 1


async def test_a_formula_start_is_neutralised_control_characters_dropped_and_a_long_text_cut_at_excels_limit(
    db: Database, seeded: int
) -> None:
    data, _ = await export(db, "visits")
    table = read_csv(data)
    topics = [r[table[0].index("沟通内容")] for r in table[1:]]
    risky = next(t for t in topics if "HYPERLINK" in t)
    assert risky.startswith("'=HYPERLINK")
    assert "\x01" not in risky
    assert exports.safe_text("a\x00b") == "ab"  # the database refuses NUL; a text from elsewhere may not
    assert len(risky) == exports.EXCEL_CELL_LIMIT
    assert exports.safe_text("+1") == "'+1" and exports.safe_text("-x") == "'-x" and exports.safe_text("@a") == "'@a"
    assert exports.safe_cell(-3) == -3  # a number is not a formula


async def test_xlsx_holds_the_same_rows_as_csv(db: Database, seeded: int) -> None:
    data, _ = await export(db, "visits")
    csv_rows = read_csv(data)
    xlsx, n = await export(db, "visits", "xlsx")
    sheet = load_workbook(io.BytesIO(xlsx), read_only=True).active
    assert sheet is not None
    got = [["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)]
    assert len(got) == n + 1
    assert got == csv_rows


async def test_other_kinds_read_as_people_do(db: Database, seeded: int) -> None:
    table = read_csv((await export(db, "requests"))[0])
    row = dict(zip(table[0], table[1], strict=True))
    assert (row["提交时间"], row["代表"], row["客户"], row["状态"]) == ("2026-11-01 00:30", "王磊", ZJU1, "处理中")
    assert row["内容"] == '{"product":"骨钉","qty":2}'
    table = read_csv((await export(db, "cards"))[0])
    row = dict(zip(table[0], table[1], strict=True))
    assert (row["状态"], row["处理人"], row["完成期限"]) == ("处理中", "吴敏", "2026-11-30 23:50")
    table = read_csv((await export(db, "plans"))[0])
    row = dict(zip(table[0], table[1], strict=True))
    assert (row["日期"], row["周期"], row["代表"], row["状态"]) == ("2026-11-30", "日", "李娜", "有效")
    table = read_csv((await export(db, "audit"))[0])
    row = dict(zip(table[0], table[1], strict=True))
    assert (row["时间"], row["操作人"], row["渠道"]) == ("2026-11-01 00:30", "王磊", "企业微信")
    assert row["变更内容"] == '{"ward":[null,"骨科"]}'
    # Every column of the model is there, whatever columns it gains.
    assert len(table[0]) == len(AuditLog.__table__.columns) + 1


async def test_an_export_is_audited(db: Database, seeded: int) -> None:
    spec = exports.make_spec("visits", "2026-11-01", "2026-11-30", "xlsx", team="mgr01")
    async with db.transaction() as s:
        exports.record_export(s, at=NOW, spec=spec, row_count=2, actor_id="admin01", channel="console")
    async with db.read() as s:
        row = await s.scalar(select(AuditLog).where(AuditLog.entity == "export"))
    assert row is not None
    assert (row.action, row.entity_id, row.actor_id, row.channel) == ("export", "visits", "admin01", "console")
    assert row.changes == {
        "kind": "visits",
        "from": "2026-11-01",
        "to": "2026-11-30",
        "scope": "team:mgr01",
        "rows": 2,
        "format": "xlsx",
        "lang": "zh-CN",
    }


@pytest.mark.parametrize(
    ("args", "key"),
    [
        (("bogus", "2026-11-01", "2026-11-30"), "export.bad_kind"),
        (("visits", "2026-11-31", "2026-11-30"), "export.bad_date"),
        (("visits", "2026-11-30", "2026-11-01"), "export.bad_range"),
    ],
)
def test_bad_requests_say_what_is_wrong(args: tuple[str, str, str], key: str) -> None:
    with pytest.raises(exports.ExportError) as info:
        exports.make_spec(*args)
    assert info.value.key == key


# ---- the command line -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.usefixtures("clean_env", "keep_logging")
async def test_the_cli_writes_the_file_under_its_default_name_and_audits_it(
    db: Database, seeded: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env = {"SALESBOT__DATABASE__URL": url_of(db)}
    runner = CliRunner()
    args = ["export", "visits", "--from", "2026-11-01", "--to", "2026-11-30", "--team", "mgr01"]
    result = await _invoke(runner, [*args, "--format", "csv", "--quiet"], env)
    assert result.exit_code == 0, result.output
    path = tmp_path / "visits_2026-11-01_2026-11-30.csv"
    assert len(read_csv(path.read_bytes())) == 3
    result = await _invoke(runner, [*args, "--out", str(tmp_path / "v.xlsx"), "--lang", "en"], env)
    assert result.exit_code == 0, result.output
    sheet = load_workbook(tmp_path / "v.xlsx", read_only=True).active
    assert sheet is not None
    assert next(sheet.iter_rows(values_only=True))[:2] == ("ID", "Visited at")
    async with db.read() as s:
        audits = list(await s.scalars(select(AuditLog).where(AuditLog.entity == "export").order_by(AuditLog.id)))
    assert [(a.channel, a.changes["format"], a.changes["rows"]) for a in audits] == [
        ("cli", "csv", 2),
        ("cli", "xlsx", 2),
    ]
    for bad in (["export", "trips", "--from", "2026-11-01", "--to", "2026-11-30"], [*args[:3], "11/01", *args[4:]]):
        result = await _invoke(runner, bad, env)
        assert result.exit_code == 2
    result = await _invoke(runner, [*args[:6], "--team", "nobody"], env)
    assert result.exit_code == 2
    assert "nobody" in result.output


async def _invoke(runner: CliRunner, args: list[str], env: dict[str, str]) -> Any:
    """The CLI runs its own event loop: call it from a worker thread, out of the test's loop."""
    import asyncio

    return await asyncio.to_thread(runner.invoke, main, args, env=env, catch_exceptions=False)


# ---- periods in chat ------------------------------------------------------------------------------------------------

MONDAY = date(2026, 11, 23)


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("本月", (date(2026, 11, 1), date(2026, 11, 30))),
        ("", (date(2026, 11, 1), date(2026, 11, 30))),
        ("上月", (date(2026, 10, 1), date(2026, 10, 31))),
        ("本周", (MONDAY, date(2026, 11, 29))),
        ("上周", (date(2026, 11, 16), date(2026, 11, 22))),
        ("2026-11", (date(2026, 11, 1), date(2026, 11, 30))),
        ("2026-12", (date(2026, 12, 1), date(2026, 12, 31))),
        ("2026年2月", (date(2026, 2, 1), date(2026, 2, 28))),
        ("11-01~11-30", (date(2026, 11, 1), date(2026, 11, 30))),
        ("2026-10-15 至 2026-11-15", (date(2026, 10, 15), date(2026, 11, 15))),
        ("11-05", (date(2026, 11, 5), date(2026, 11, 5))),
        ("11-30~11-01", None),
        ("2026-13", None),
        ("下下月", None),
    ],
)
def test_a_chat_period_is_org_days(text: str, span: tuple[date, date] | None) -> None:
    assert exports.parse_period(text, MONDAY) == span
