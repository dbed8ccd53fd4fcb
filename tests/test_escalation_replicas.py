"""Acceptance: two app replicas on one PostgreSQL sweep the same 2,000 due cards; a replica killed mid-sweep.

Issue: "Two app instances on one PostgreSQL sweeping the same 2,000 due cards concurrently: each escalation
delivered exactly once (count the fake API's received notices). Kill one instance mid-sweep: the other finishes the
work."

Setup (PostgreSQL only; SQLite has one writer and no row claims, so there is nothing to race):

* 200 departments ``d000``…``d199``, each with one head (``h000``…, WeCom userid = user id) and 10 open, unclaimed
  cards created at T0 (Monday 10:00 Shanghai), seeded with bulk INSERTs. Each card's policy is frozen with
  ``freeze_policy``: no reminder, L1 "not claimed after the first-response SLA (2 working hours) → head", L2 "not
  done after the completion SLA → director". At 12:00 exactly one step (L1) is due on every card. Ten notices per
  head stay under the bot's throttle (20/min) and WeCom's (30/min): nothing is deferred or silently dropped, so the
  run needs no clock travel and is deterministic.
* Every replica is a full ``Runtime`` (own engine and pool, own Escalator, own outbox worker, own WeCom client) with
  WeCom enabled and pointing at ONE ``FakeWeCom`` served on loopback; all share one injected ``FixedClock``.

Exactly once is checked at the fake (2,000 escalation template cards, task ids ``task_id_for(f"{ref}-e1")``, one per
card, each to that card's head, no violations / duplicates / drops) and in the database (2,000 ``escalation.level``
audit rows, one per card; every card's ``esc_step`` 0 → 1, ``notices`` 0 → 1, ``next_due_at`` = its L2, and the same
ORM ``version`` on every card — a card advanced by a second transaction would count more UPDATEs; 2,000 outbox rows,
each sent on its first attempt).

The kill is a real one: cancelling an asyncio task in this process would run the ``async with`` exits (a polite
ROLLBACK) and keep the connection pool alive, which is not what a crash does. Instead replica A is a subprocess
(``tests/replica_sweeper.py``) killed with SIGKILL *while a batch transaction is open*. To make "mid-batch"
deterministic without sleeps, the test lets A commit three batches (A prints a line after each commit), then takes
``LOCK TABLE audit_log IN SHARE MODE`` in its own connection: A's next batch has claimed its 50 rows (``FOR UPDATE
SKIP LOCKED``) and blocks when it flushes its first audit row. The test waits until ``pg_locks`` shows A's backend
waiting, SIGKILLs A, releases the lock and waits for PostgreSQL to end A's orphaned backend (which rolls the batch
back and frees its row locks). Then: the database holds exactly A's committed batches (a multiple of 50, every card
either fully escalated or untouched), and replica B's sweep plus B's outbox finish everything, exactly once.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import func, insert, select, text

from bot.config import Settings, parse_settings
from bot.escalator import SweepStats
from bot.infra.clock import FixedClock
from bot.runtime import Runtime
from bot.services.escalation import freeze_policy
from bot.services.requests import deadlines
from cards.wecom import task_id_for
from storage.db import Database
from storage.models import AuditLog, Customer, OutboxMessage, SupportRequest, TaskCard, User, UserIdentity
from tests.conftest import T0
from tests.fakes.wecom import FakeWeCom, validate_send

ROOT = Path(__file__).resolve().parents[1]
SH = ZoneInfo("Asia/Shanghai")
DEPARTMENTS = 200
CARDS_PER_HEAD = 10
CARDS = DEPARTMENTS * CARDS_PER_HEAD
BATCH = 50
TYPE_KEY = "stock_reservation"
# 12:00 on the creation day: the first-response SLA (2 working hours from 10:00) has passed, nothing else has.
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=SH).astimezone(UTC)
LEVELS = [
    {"trigger": "not_claimed", "after_sla": "first_response", "notify": ["head"]},
    {"trigger": "not_done", "after_sla": "complete", "notify": ["director"]},
]
NOTICE_RE = re.compile(r"-e\d+$")

CORP = "wwreplicacorp01"
AGENT = 1000002
SECRET = "replica-app-secret"

# Only PostgreSQL: ``db_url`` skips with the conftest's reason when no PostgreSQL answers.
pytestmark = [pytest.mark.slow, pytest.mark.parametrize("backend", ["postgresql"])]


# ---- fixtures -------------------------------------------------------------------------------------------------


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
async def fake_wecom(clock: FixedClock) -> AsyncIterator[tuple[FakeWeCom, str]]:
    """One fake WeCom API for every replica (its time is the shared injected clock) and its /cgi-bin/ URL."""
    fake = FakeWeCom(corp_id=CORP, secret=SECRET, agent_id=AGENT, now=lambda: clock.now().timestamp())
    server = TestServer(fake.app())
    await server.start_server()
    try:
        yield fake, str(server.make_url("/cgi-bin/"))
    finally:
        fake.release_timeouts()
        await server.close()


def raw_config(db_url: str, api_base_url: str) -> dict[str, Any]:
    """The configuration every replica runs with, as the TOML file would give it."""
    departments = {"logistics": ("物流", "Logistics"), "marketing": ("市场", "Marketing")}
    departments |= {"compliance": ("合规", "Compliance")}
    departments |= {f"d{n:03d}": (f"部门{n:03d}", f"Dept {n:03d}") for n in range(DEPARTMENTS)}
    return {
        "database": {"url": db_url},
        "org": {"demo": True},
        "console": {"enabled": True},
        "departments": {k: {"name_zh": zh, "name_en": en} for k, (zh, en) in departments.items()},
        "outbox": {"batch_size": 200, "concurrency": 16, "poll_interval_seconds": 0.05},
        "escalation": {"sweep_interval_seconds": 3600, "batch_size": BATCH, "remind_at": 0, "levels": LEVELS},
        "wecom": {
            "enabled": True,
            "corp_id": CORP,
            "agent_id": AGENT,
            "secret": SECRET,
            "token": "replica-token",
            "encoding_aes_key": "0123456789abcdefghijklmnopqrstuvwxyzABCDEFG",
            "api_base_url": api_base_url,
            "app_calls_per_minute": 10000,
            "request_timeout_seconds": 10,
        },
    }


@pytest.fixture
def config(db_url: str, fake_wecom: tuple[FakeWeCom, str]) -> dict[str, Any]:
    return raw_config(db_url, fake_wecom[1])


@pytest.fixture
async def seeded(config: dict[str, Any], db_url: str) -> dict[str, dict[str, Any]]:
    """2,000 due cards (ref → expected facts), seeded with a handful of bulk INSERTs."""
    return await seed(parse_settings(config, "<replicas>"), db_url)


async def seed(settings: Settings, db_url: str) -> dict[str, dict[str, Any]]:
    rt_cfg = settings.request_types[TYPE_KEY]
    task = rt_cfg.tasks[0]
    created = T0
    due = deadlines(settings, rt_cfg, created, task.first_response_hours, task.complete_hours)
    heads = [f"h{n:03d}" for n in range(DEPARTMENTS)]
    db = Database(db_url)
    try:
        async with db.transaction() as s:
            customer_id = await s.scalar(select(Customer.id).order_by(Customer.id).limit(1))
            await s.execute(
                insert(User.__table__),
                [
                    {
                        "id": h,
                        "name": f"主管{h[1:]}",
                        "roles": ["head"],
                        "department": f"d{h[1:]}",
                        "manager_id": None,
                        "locale": "zh-CN",
                        "active": True,
                        "created_at": created,
                        "updated_at": created,
                    }
                    for h in heads
                ],
            )
            await s.execute(
                insert(UserIdentity.__table__),
                [{"user_id": h, "channel": "wecom", "external_id": h, "created_at": created} for h in heads],
            )
            request_rows = [
                {
                    "type_key": TYPE_KEY,
                    "rep_id": "rep01",
                    "customer_id": customer_id,
                    "ward": None,
                    "fields": {"product": "骨钉", "quantity": str(i % 50 + 1), "needed_by": "2026-11-30"},
                    "visit_id": None,
                    "status": "open",
                    "source_channel": "wecom",
                    "created_at": created,
                    "updated_at": created,
                }
                for i in range(CARDS)
            ]
            table = SupportRequest.__table__
            result = await s.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True), request_rows)
            request_ids = list(result.scalars())
        assert len(request_ids) == CARDS
        expected: dict[str, dict[str, Any]] = {}
        card_rows = []
        for i, request_id in enumerate(request_ids):
            dept = f"d{i % DEPARTMENTS:03d}"
            policy = freeze_policy(
                settings, rt_cfg, TYPE_KEY, dept, created, task.first_response_hours, task.complete_hours
            )
            steps = policy["steps"]
            assert [s["kind"] for s in steps] == ["level", "level"]
            ref = f"task-{request_id}-{dept}-{i:05d}"
            expected[ref] = {"head": f"h{dept[1:]}", "next_due": datetime.fromisoformat(steps[1]["due"])}
            card_rows.append(
                {
                    "request_id": request_id,
                    "department": dept,
                    "ref": ref,
                    "title": f"备货 骨钉 × {i % 50 + 1}",
                    "state": "open",
                    "resume_state": None,
                    "holder_id": None,
                    "require_claim": True,
                    "evidence": "none",
                    "first_response_hours": task.first_response_hours,
                    "complete_hours": task.complete_hours,
                    "respond_by": due.respond_by,
                    "due_at": due.due_at,
                    "attachments": [],
                    "questions": [],
                    "reject_reason": None,
                    "recipients": [f"h{dept[1:]}"],
                    "version": 0,
                    "created_at": created,
                    "state_since": created,
                    "updated_at": created,
                    "policy": policy,
                    "esc_step": 0,
                    "next_due_at": datetime.fromisoformat(steps[0]["due"]),
                    "repeat_step": None,
                    "repeat_at": None,
                    "snoozed_until": None,
                    "notices": 0,
                    "watchers": [],
                }
            )
        # L1 is due at NOW on every card; L2 is not.
        assert {r["next_due_at"] for r in card_rows} == {NOW}
        assert all(e["next_due"] > NOW for e in expected.values())
        async with db.transaction() as s:
            await s.execute(insert(TaskCard.__table__), card_rows)
    finally:
        await db.dispose()
    return expected


@pytest.fixture
async def observer(db_url: str) -> AsyncIterator[Database]:
    """The test's own connection pool on the shared database (locks, pg_locks, checks)."""
    db = Database(db_url)
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture
async def replicas(config: dict[str, Any], clock: FixedClock) -> AsyncIterator[Callable[[], Runtime]]:
    """``replica()`` → a new Runtime on the shared database, fake and clock (closed at the end). Not started: the
    test drives the sweep and the outbox itself, so nothing runs behind its back."""
    made: list[Runtime] = []

    def replica() -> Runtime:
        rt = Runtime(parse_settings(config, "<replica>"), clock=clock)
        made.append(rt)
        return rt

    try:
        yield replica
    finally:
        for rt in made:
            await rt.outbox.stop()
            await rt.close()


# ---- checks ---------------------------------------------------------------------------------------------------


def sent(rt: Runtime) -> int:
    """Outbox rows this replica delivered (its own metrics registry)."""
    value = rt.metrics.registry.get_sample_value(
        "salesbot_outbox_delivered_total", {"channel": "wecom", "result": "sent"}
    )
    return int(value or 0)


def add(total: SweepStats, part: SweepStats) -> None:
    total.cards += part.cards
    total.notices += part.notices
    total.skipped += part.skipped
    total.conflicts += part.conflicts


async def card_states(db: Database) -> dict[str, tuple[int, int, int, datetime | None]]:
    """ref → (esc_step, notices, version, next_due_at)."""
    async with db.read() as s:
        rows = await s.execute(
            select(TaskCard.ref, TaskCard.esc_step, TaskCard.notices, TaskCard.version, TaskCard.next_due_at)
        )
        return {ref: (step, notices, version, due) for ref, step, notices, version, due in rows.all()}


async def level_audits(db: Database) -> Counter[str]:
    """Card id → number of escalation.level audit rows."""
    async with db.read() as s:
        rows = await s.scalars(select(AuditLog.entity_id).where(AuditLog.action == "escalation.level"))
        return Counter(rows)


async def outbox_summary(db: Database) -> tuple[int, Counter[tuple[str, str, int]]]:
    async with db.read() as s:
        total = await s.scalar(select(func.count()).select_from(OutboxMessage))
        rows = await s.execute(select(OutboxMessage.status, OutboxMessage.channel, OutboxMessage.attempts))
        return int(total or 0), Counter((status, channel, attempts) for status, channel, attempts in rows.all())


async def assert_escalated_exactly_once(db: Database, fake: FakeWeCom, expected: dict[str, dict[str, Any]]) -> None:
    # At the fake: one escalation notice per card, to that card's head, nothing rejected, merged or dropped.
    assert fake.violations == []
    assert (fake.suppressed_duplicates, fake.silently_dropped) == (0, 0)
    for r in fake.requests:
        if r.endpoint == "message/send":
            assert validate_send(r.body) == []
    notices = [
        d
        for d in fake.delivered
        if d.msgtype == "template_card" and NOTICE_RE.search(d.body["template_card"]["task_id"])
    ]
    task_ids = Counter(d.body["template_card"]["task_id"] for d in notices)
    assert len(notices) == CARDS, f"{len(notices)} escalation notices delivered, expected {CARDS}"
    assert [t for t, n in task_ids.items() if n > 1] == []
    want = {task_id_for(f"{ref}-e1"): facts["head"] for ref, facts in expected.items()}
    assert set(task_ids) == set(want)
    assert all(d.touser == [want[d.body["template_card"]["task_id"]]] for d in notices)
    assert len(fake.delivered) == CARDS  # nothing but the notices was sent

    # In the database: one level audit row per card, one UPDATE per card, the next due is L2, all sent once.
    async with db.read() as s:
        ids = dict((await s.execute(select(TaskCard.ref, TaskCard.id))).all())
    audits = await level_audits(db)
    assert sum(audits.values()) == CARDS
    assert audits == Counter({str(ids[ref]): 1 for ref in expected})
    states = await card_states(db)
    assert {ref: (st[0], st[1], st[3]) for ref, st in states.items()} == {
        ref: (1, 1, facts["next_due"]) for ref, facts in expected.items()
    }
    # The ORM version counts the card's UPDATEs (one per flush; the sweep flushes twice in its transaction): the
    # same number on every card, so no card was advanced by a second transaction.
    versions = Counter(st[2] for st in states.values())
    assert len(versions) == 1 and next(iter(versions)) > 0, versions
    total, by_status = await outbox_summary(db)
    assert total == CARDS
    assert by_status == Counter({("sent", "wecom", 1): CARDS})


# ---- 1. two replicas sweeping the same cards at once ----------------------------------------------------------


async def test_two_replicas_sweep_2000_due_cards_each_escalation_delivered_once(
    db_url: str,
    seeded: dict[str, dict[str, Any]],
    fake_wecom: tuple[FakeWeCom, str],
    replicas: Callable[[], Runtime],
) -> None:
    fake, _ = fake_wecom
    a, b = replicas(), replicas()
    swept = {"A": SweepStats(), "B": SweepStats()}
    started = time.monotonic()
    # Both outbox workers run as in production, delivering while the sweeps commit (their claims race too).
    a.outbox.start()
    b.outbox.start()
    for _ in range(5):  # rounds, as two schedulers' ticks would overlap; ends when neither finds work
        stats_a, stats_b = await asyncio.gather(a.escalator.sweep(), b.escalator.sweep())
        add(swept["A"], stats_a)
        add(swept["B"], stats_b)
        if stats_a.cards + stats_b.cards + stats_a.conflicts + stats_b.conflicts == 0:
            break
    swept_at = time.monotonic() - started
    await asyncio.gather(a.settle(), b.settle())
    elapsed = time.monotonic() - started
    delivered = {name: sent(rt) for name, rt in (("A", a), ("B", b))}
    print(
        f"\nswept in {swept_at:.1f}s, delivered by {elapsed:.1f}s — A: {swept['A']}, B: {swept['B']}; "
        f"notices delivered — A: {delivered['A']}, B: {delivered['B']}"
    )

    assert swept["A"].cards + swept["B"].cards == CARDS
    assert swept["A"].notices + swept["B"].notices == CARDS
    assert swept["A"].cards > 0 and swept["B"].cards > 0, "both replicas must have taken part of the work"
    await assert_escalated_exactly_once(a.db, fake, seeded)


# ---- 2. a replica killed mid-sweep ----------------------------------------------------------------------------


async def until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    """Await ``condition`` (re-checked every 10 ms, 20 s at most): a PostgreSQL lock wait or a backend's exit
    sends no notification."""
    try:
        async with asyncio.timeout(20):
            while True:
                if await condition():
                    return
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")
async def test_replica_killed_mid_sweep_the_other_finishes(
    db_url: str,
    seeded: dict[str, dict[str, Any]],
    fake_wecom: tuple[FakeWeCom, str],
    config: dict[str, Any],
    replicas: Callable[[], Runtime],
    observer: Database,
    tmp_path: Path,
) -> None:
    fake, _ = fake_wecom
    config_file = tmp_path / "replica.json"
    config_file.write_text(json.dumps(config))
    stderr = (tmp_path / "replica-a.stderr").open("wb")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.replica_sweeper",
        str(config_file),
        NOW.isoformat(),
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=stderr,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        # A commits three batches …
        while len(lines) < 3:
            line = (await proc.stdout.readline()).decode()
            assert line.startswith("batch "), f"replica A: {line!r} (stderr: {tmp_path / 'replica-a.stderr'})"
            lines.append(line)
        async with observer.engine.connect() as locker:
            # … then its next batch, holding its claimed rows, blocks at its first audit row.
            await locker.execute(text("LOCK TABLE audit_log IN SHARE MODE"))
            waiting: list[int] = []

            async def a_is_blocked() -> bool:
                async with observer.read() as s:
                    rows = await s.scalars(
                        text(
                            "SELECT pid FROM pg_locks WHERE locktype = 'relation' AND NOT granted"
                            " AND relation = 'audit_log'::regclass"
                        )
                    )
                    waiting[:] = list(rows)
                return bool(waiting)

            await until(a_is_blocked, "replica A to block inside its batch")
            [a_pid] = waiting
            async with observer.read() as s:
                held = set(
                    await s.scalars(
                        text(
                            "SELECT mode FROM pg_locks WHERE pid = :pid AND granted"
                            " AND relation = 'task_cards'::regclass"
                        ),
                        {"pid": a_pid},
                    )
                )
            assert "RowShareLock" in held, f"A's blocked batch should hold its FOR UPDATE claims, holds {held}"
            print(f"\nA blocked mid-batch after {len(lines)} commits; its locks on task_cards: {sorted(held)}")
            proc.kill()
            assert await proc.wait() == -signal.SIGKILL
            lines += [ln for ln in (await proc.stdout.read()).decode().splitlines() if ln]
            await locker.rollback()  # release audit_log: A's orphaned backend runs into the closed socket

        async def a_backend_gone() -> bool:
            async with observer.read() as s:
                n = await s.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": a_pid})
            return n == 0

        await until(a_backend_gone, "PostgreSQL to end the killed replica's backend")
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        stderr.close()

    # What A left: exactly its committed batches, every card escalated fully or not at all.
    committed = [ln for ln in lines if ln.startswith("batch ")]
    assert not any(ln.startswith("done") for ln in lines), "A finished before it was killed"
    a_cards = sum(int(ln.split()[1]) for ln in committed)
    assert a_cards == BATCH * len(committed)
    states = await card_states(observer)
    done = {ref for ref, (step, _, _, _) in states.items() if step == 1}
    untouched = {ref for ref, st in states.items() if st == (0, 0, 0, NOW)}
    assert len(done) == a_cards
    assert done | untouched == set(seeded) and not done & untouched, "a card was left half-escalated"
    assert all(states[ref][:2] == (1, 1) and states[ref][3] == seeded[ref]["next_due"] for ref in done)
    assert len({states[ref][2] for ref in done}) == 1 and states[next(iter(done))][2] > 0
    assert sum((await level_audits(observer)).values()) == a_cards
    total, by_status = await outbox_summary(observer)
    assert (total, by_status) == (a_cards, Counter({("pending", "wecom", 0): a_cards}))

    # B finishes the sweep and delivers everything, A's committed notices included.
    b = replicas()
    stats_b = SweepStats()
    started = time.monotonic()
    for _ in range(5):
        part = await b.escalator.sweep()
        add(stats_b, part)
        if part.cards + part.conflicts == 0:
            break
    await b.settle()
    elapsed = time.monotonic() - started
    print(f"\nA (killed): {len(committed)} batches, {a_cards} cards; B: {stats_b} in {elapsed:.1f}s")

    assert stats_b.cards == stats_b.notices == CARDS - a_cards
    await assert_escalated_exactly_once(b.db, fake, seeded)
