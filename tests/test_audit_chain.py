"""The tamper-evident audit chain (issue 15, docs/audit.md): rows written by the real services verify; each kind of
tampering is found at its row; two replicas appending at once keep one chain; the 0017 backfill verifies; the
``salesbot audit verify`` / ``anchor`` commands. On SQLite and PostgreSQL (``db``: the demo directory loaded)."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select, text

from bot import audit_anchor
from bot.cli import main
from bot.config import VisitsConfig
from bot.infra import audit
from bot.services import visits as svc
from storage import audit_chain
from storage.audit_verify import Anchor, Report, verify
from storage.db import Database
from storage.migrate import upgrade
from storage.models import AuditChainHead, AuditLog, User
from tests.conftest import make_settings

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
CFG = VisitsConfig()
KEY = b"k" * 40


@pytest.fixture(autouse=True)
def no_key() -> Iterator[None]:
    audit_chain.configure(None)
    yield
    audit_chain.configure(None)


async def write_rows(db: Database, n: int, start: datetime = NOW) -> None:
    """``n`` audit rows, one transaction each, with Chinese text, nested changes and microseconds."""
    for i in range(n):
        async with db.transaction() as s:
            audit.record(
                s,
                at=start + timedelta(minutes=i, microseconds=123456),
                action="test.write",
                entity="visit",
                entity_id=i,
                actor_id="rep01",
                channel="console",
                changes={"备注": ["旧", f"新{i}"], "n": i, "z": {"b": 1, "a": [1.5, None]}},
            )


async def last_seq(db: Database) -> int:
    async with db.read() as s:
        return int(await s.scalar(select(func.max(AuditLog.seq))) or 0)


async def sql(db: Database, statement: str, **params: object) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(text(statement), params)


def first(report: Report) -> tuple[int | None, str]:
    assert report.breaks, "expected a break"
    return report.breaks[0].seq, report.breaks[0].kind


# ---- an untouched trail -----------------------------------------------------------------------------------------


async def test_rows_written_by_the_services_verify(db: Database) -> None:
    """The demo import's rows, a visit and its correction: one chain from seq 1, linked, and the head agrees."""
    async with db.transaction() as s:
        rep = await s.get(User, "rep01")
        assert rep is not None
        draft = svc.VisitDraft(customer_id=1, visited_at=NOW.isoformat(), next_step="送样")
        visit, _ = await svc.submit(s, draft, rep, now=NOW, cfg=CFG, tz=SHANGHAI, channel="console")
    async with db.transaction() as s:
        loaded = await svc.load_visit(s, visit.id, f"V{visit.id}")
        assert await svc.correct(s, loaded, {"next_step": "跟台"}, rep, now=NOW + timedelta(hours=1), channel="console")

    async with db.read() as s:
        rows = list(await s.scalars(select(AuditLog).order_by(AuditLog.seq)))
        head = await s.get(AuditChainHead, 1)
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
    assert rows[0].prev_hash == audit_chain.GENESIS
    assert all(b.prev_hash == a.row_hash for a, b in itertools.pairwise(rows))
    assert [r.action for r in rows[-2:]] == ["visit.create", "visit.correct"]
    assert rows[-1].changes["next_step"] == ["送样", "跟台"]  # the old value stays in the trail
    assert head is not None and (head.seq, head.hash) == (rows[-1].seq, rows[-1].row_hash)

    report = await verify(db)
    assert report.ok, report.breaks
    assert (report.rows, report.head_hash) == (len(rows), rows[-1].row_hash)


async def test_several_rows_in_one_flush_are_chained_in_the_order_they_were_added(db: Database) -> None:
    base = await last_seq(db)
    async with db.transaction() as s:
        for i in range(5):
            audit.record(s, at=NOW, action="test.batch", entity="x", entity_id=i)
    async with db.read() as s:
        rows = list(await s.scalars(select(AuditLog).where(AuditLog.action == "test.batch").order_by(AuditLog.seq)))
    assert [(r.seq, r.entity_id) for r in rows] == [(base + i + 1, str(i)) for i in range(5)]
    assert (await verify(db)).ok


async def test_a_range_verifies_from_its_first_row(db: Database) -> None:
    await write_rows(db, 6)
    top = await last_seq(db)
    report = await verify(db, top - 3, top - 1)
    assert report.ok and report.rows == 3


# ---- tampering --------------------------------------------------------------------------------------------------


async def test_an_edited_row_is_found_at_its_seq(db: Database) -> None:
    await write_rows(db, 5)
    target = await last_seq(db) - 2
    await sql(db, "UPDATE audit_log SET changes = :c WHERE seq = :s", c=json.dumps({"备注": ["旧", "改过"]}), s=target)
    assert first(await verify(db)) == (target, "edited")


async def test_an_edited_newest_row_is_found(db: Database) -> None:
    await write_rows(db, 3)
    target = await last_seq(db)
    await sql(db, "UPDATE audit_log SET actor_id = 'mgr01' WHERE seq = :s", s=target)
    assert first(await verify(db)) == (target, "edited")


async def test_a_deleted_middle_row_is_a_gap(db: Database) -> None:
    await write_rows(db, 5)
    target = await last_seq(db) - 2
    await sql(db, "DELETE FROM audit_log WHERE seq = :s", s=target)
    assert first(await verify(db)) == (target, "deleted")


async def test_two_swapped_rows_are_reordered(db: Database) -> None:
    await write_rows(db, 5)
    a = await last_seq(db) - 3
    await sql(db, "UPDATE audit_log SET seq = -1 WHERE seq = :a", a=a)
    await sql(db, "UPDATE audit_log SET seq = :a WHERE seq = :b", a=a, b=a + 1)
    await sql(db, "UPDATE audit_log SET seq = :b WHERE seq = -1", b=a + 1)
    assert first(await verify(db)) == (a, "reordered")


async def test_deleting_the_newest_rows_is_found_by_the_head(db: Database) -> None:
    await write_rows(db, 5)
    top = await last_seq(db)
    await sql(db, "DELETE FROM audit_log WHERE seq > :s", s=top - 2)
    assert first(await verify(db)) == (top - 1, "truncated")


async def test_deleting_the_newest_rows_and_fixing_the_head_is_found_by_an_anchor(db: Database) -> None:
    await write_rows(db, 5)
    settings = make_settings(db.url)
    anchor = await audit_anchor.anchor_now(db, settings, NOW, places=[])
    top = await last_seq(db)
    assert anchor["seq"] == top
    await sql(db, "DELETE FROM audit_log WHERE seq > :s", s=top - 2)
    async with db.read() as s:
        new_head = await s.scalar(select(AuditLog.row_hash).where(AuditLog.seq == top - 2))
    await sql(db, "UPDATE audit_chain_head SET seq = :s, hash = :h", s=top - 2, h=new_head)

    assert (await verify(db)).ok  # without the anchor the database alone looks intact
    assert first(await verify(db, anchors=[Anchor(anchor["seq"], anchor["hash"])])) == (top - 1, "truncated")


async def test_a_rewritten_tail_differs_from_the_anchor(db: Database) -> None:
    """The attacker deletes the newest rows and appends new ones through the bot: same seq, another hash."""
    await write_rows(db, 4)
    top = await last_seq(db)
    async with db.read() as s:
        anchored = await s.scalar(select(AuditLog.row_hash).where(AuditLog.seq == top))
        keep = await s.scalar(select(AuditLog.row_hash).where(AuditLog.seq == top - 1))
    await sql(db, "DELETE FROM audit_log WHERE seq = :s", s=top)
    await sql(db, "UPDATE audit_chain_head SET seq = :s, hash = :h", s=top - 1, h=keep)
    await write_rows(db, 1, start=NOW + timedelta(days=1))
    assert first(await verify(db, anchors=[Anchor(top, str(anchored))])) == (top, "truncated")


async def test_a_forged_row_with_a_made_up_hash(db: Database) -> None:
    await write_rows(db, 3)
    top = await last_seq(db)
    async with db.read() as s:
        head = await s.get(AuditChainHead, 1)
    assert head is not None
    at = datetime(2026, 12, 3, 10, 0) if db.is_sqlite else datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    await sql(
        db,
        "INSERT INTO audit_log (at, actor_id, action, entity, entity_id, changes, seq, prev_hash, row_hash) "
        "VALUES (:at, 'admin01', 'visit.unlock', 'visit', '1', '{}', :s, :p, :h)",
        at=at,
        s=top + 1,
        p=head.hash,
        h="f" * 64,
    )
    assert first(await verify(db)) == (top + 1, "forged")


async def test_a_row_inserted_without_a_seq_is_forged(db: Database) -> None:
    await write_rows(db, 2)
    at = datetime(2026, 12, 3, 10, 0) if db.is_sqlite else datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    await sql(db, "INSERT INTO audit_log (at, action, entity, changes) VALUES (:at, 'x', 'visit', '{}')", at=at)
    assert first(await verify(db)) == (None, "forged")


async def test_with_a_key_a_chain_recomputed_without_it_does_not_verify(db: Database) -> None:
    audit_chain.configure(KEY)
    await sql(db, "DELETE FROM audit_log")
    await sql(db, "UPDATE audit_chain_head SET seq = 0, hash = :h", h=audit_chain.GENESIS)
    await write_rows(db, 3)
    assert (await verify(db, key=KEY)).ok
    assert first(await verify(db, key=None)) == (1, "edited")


# ---- concurrency ------------------------------------------------------------------------------------------------


async def test_two_replicas_appending_at_once_keep_one_chain(db: Database, backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("replicas share a PostgreSQL; SQLite writers are serialised by its write lock")
    other = Database(db.url)
    try:

        async def append(database: Database, who: str, n: int) -> None:
            for i in range(n):
                async with database.transaction() as s:
                    audit.record(s, at=NOW, action="test.replica", entity="visit", entity_id=f"{who}{i}")
                    audit.record(s, at=NOW, action="test.replica", entity="visit", entity_id=f"{who}{i}b")

        await asyncio.gather(*(append(d, f"{name}{t}", 15) for t in range(3) for name, d in (("a", db), ("b", other))))
    finally:
        await other.dispose()
    async with db.read() as s:
        seqs = list(await s.scalars(select(AuditLog.seq).order_by(AuditLog.seq)))
        replica_rows = await s.scalar(select(func.count()).where(AuditLog.action == "test.replica"))
    assert replica_rows == 2 * 15 * 6
    assert seqs == list(range(1, len(seqs) + 1))
    assert (await verify(db)).ok


# ---- the migration's backfill -----------------------------------------------------------------------------------


async def test_the_upgrade_chains_the_existing_rows(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    try:
        await upgrade(db, "0016")
        async with db.engine.begin() as conn:
            for i in range(5):
                await conn.execute(
                    text(
                        "INSERT INTO audit_log (at, actor_id, channel, action, entity, entity_id, changes) "
                        "VALUES (:at, 'rep01', 'wecom', 'visit.create', 'visit', :e, :c)"
                    ),
                    {"at": f"2026-11-0{i + 1} 08:00:00.250000", "e": str(i), "c": json.dumps({"备注": [None, i]})},
                )
        await upgrade(db)
        report = await verify(db)
        assert report.ok and report.rows == 5
        await write_rows(db, 2)  # appends continue from the backfilled head
        assert (await verify(db)).rows == 7
    finally:
        await db.dispose()


# ---- the command line -------------------------------------------------------------------------------------------


def cli(*args: str, env: dict[str, str]) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


@pytest.mark.usefixtures("clean_env", "keep_logging")
def test_cli_verify_anchor_and_a_break(tmp_path: Path) -> None:
    env = {"SALESBOT__DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"}
    assert cli("db", "upgrade", env=env).exit_code == 0
    demo = Path(__file__).resolve().parent.parent / "bot" / "demo_data"
    assert cli("import", "org", str(demo / "org.csv"), env=env).exit_code == 0

    ok = cli("audit", "verify", env=env)
    assert ok.exit_code == 0, ok.output
    assert "审计链完整" in ok.stdout

    anchors = tmp_path / "anchors.jsonl"
    made = cli("audit", "anchor", "--to", f"file:{anchors}", env=env)
    assert made.exit_code == 0, made.output
    anchor = json.loads(anchors.read_text(encoding="utf-8").splitlines()[0])
    assert anchor["seq"] == anchor["count"] > 2
    assert cli("audit", "verify", "--anchors", str(anchors), env=env).exit_code == 0

    import sqlite3

    with sqlite3.connect(tmp_path / "cli.db") as conn:
        conn.execute("UPDATE audit_log SET actor_id = 'x' WHERE seq = 2")
    broken = cli("audit", "verify", env=env)
    assert broken.exit_code == 1
    assert "审计链断裂" in broken.stdout and "序号 2" in broken.stdout

    english = cli("audit", "verify", env={**env, "SALESBOT__ORG__DEFAULT_LOCALE": "en"})
    assert english.exit_code == 1
    assert "BROKEN at seq 2" in english.stdout and "[edited]" in english.stdout

    bad = cli("audit", "verify", "--from", "yesterday", env=env)
    assert bad.exit_code == 2 and "无效" in bad.stderr


# ---- PIPL anonymisation -----------------------------------------------------------------------------------------


async def test_anonymising_a_departed_employee_keeps_the_chain_valid(db: Database) -> None:
    from bot.services import anonymise

    async with db.read() as s:
        before = list(await s.scalars(select(AuditLog).where(AuditLog.entity == "user", AuditLog.entity_id == "rep02")))
    assert before and any("name" in row.changes for row in before)

    async with db.transaction() as s:
        redacted = await anonymise.anonymise_user(s, "rep02", now=NOW, actor_id="admin01")
    assert redacted == len([row for row in before if set(row.changes) - anonymise.KEEP])

    async with db.read() as s:
        user = await s.get(User, "rep02")
        rows = list(await s.scalars(select(AuditLog).where(AuditLog.entity == "user", AuditLog.entity_id == "rep02")))
    assert user is not None and user.name == "已离职员工 rep02" and not user.identities
    assert all(row.changes.get("name", [anonymise.REDACTED]) == [anonymise.REDACTED] * 2 for row in rows[:-1])
    assert rows[-1].action == "audit.redact"
    report = await verify(db)
    assert report.ok, report.breaks
    assert report.redacted == redacted

    # A redaction does not cover a later edit of the redacted row.
    target = next(row.seq for row in rows if "name" in row.changes)
    await sql(db, "UPDATE audit_log SET actor_id = 'x' WHERE seq = :s", s=target)
    assert first(await verify(db)) == (target, "edited")


# ---- ranges and anchor places -----------------------------------------------------------------------------------


async def test_a_range_by_instants_covers_the_rows_written_in_it(db: Database) -> None:
    from storage.audit_verify import seq_range

    await write_rows(db, 4, start=datetime(2027, 1, 1, tzinfo=UTC))
    top = await last_seq(db)
    low, high = await seq_range(db, datetime(2027, 1, 1, 0, 1, tzinfo=UTC), datetime(2027, 1, 1, 0, 3, tzinfo=UTC))
    assert (low, high) == (top - 2, top - 1)  # rows at :01 and :02 (the :03 row is at 00:03:00.123456, not before)
    assert (await verify(db, low, high)).rows == 2


def test_an_anchor_goes_to_each_place(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    anchor = {"seq": 7, "hash": "ab" * 32, "count": 7, "at": NOW.isoformat()}
    target = tmp_path / "sub" / "anchors.jsonl"
    with caplog.at_level("INFO", logger="salesbot.audit"):
        assert audit_anchor.write(anchor, [f"file:{target}", "log"]) == [f"file:{target}", "log"]
        audit_anchor.write(anchor, [f"file:{target}"])
    assert [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()] == [anchor, anchor]
    assert any("audit anchor" in r.getMessage() and '"seq": 7' in r.getMessage() for r in caplog.records)


@pytest.mark.usefixtures("clean_env", "keep_logging")
def test_cli_anonymise_keeps_the_chain_valid(tmp_path: Path) -> None:
    env = {"SALESBOT__DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"}
    assert cli("db", "upgrade", env=env).exit_code == 0
    demo = Path(__file__).resolve().parent.parent / "bot" / "demo_data"
    assert cli("import", "org", str(demo / "org.csv"), env=env).exit_code == 0

    done = cli("audit", "anonymise", "rep02", env=env)
    assert done.exit_code == 0, done.output
    assert "已匿名化 rep02" in done.stdout
    assert cli("audit", "verify", env=env).exit_code == 0
    unknown = cli("audit", "anonymise", "nobody", env=env)
    assert unknown.exit_code == 2 and "找不到用户" in unknown.stderr
