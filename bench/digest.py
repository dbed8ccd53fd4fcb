"""The manager digest (issue 12) over a generated org: one manager's, a director's and all managers' day digests,
next to the bare aggregate SQL for the same core figures, at 100k and 1M visits on SQLite and PostgreSQL.

Run from the repository root (SQLite and PostgreSQL, 100k and 1M visits; generation dominates the wall time):

    python bench/digest.py [--visits 100000,1000000] [--backends sqlite,postgresql] [--runs 30]
                           [--pg-url URL] [--seed 1] [--keep]

Each (backend, size) gets a fresh database: a SQLite file in a temporary directory, or a scratch PostgreSQL
database ``salesbot_bench_digest_<random>`` created on ``--pg-url`` and dropped afterwards (the database named in
the URL is only used to create and drop it). The schema comes from the app's migrations (``storage.migrate``).

The org: 1 director, 40 managers (mgr02-mgr04 report to mgr01, the rest to the director), 600 reps (15 per
manager), 7 people in each department of the default config, 5,000 customers (grades A 20 %, B 30 %, C 50 %, each
with a responsible rep). Over the working days (Monday-Friday) of the ~6 months up to the benchmark's instant
(Tuesday 2026-11-24 18:00 Asia/Shanghai, the digest time), with N visits: 0.3 N plan items (85 % day items, 15 %
week items, 3 % cancelled; spans from ``plan_rule.span``), each done by a visit of its rep inside its span with the
rep's own reliability (60-98 %), 10 % of the done ones visited twice; the rest of the N visits unplanned (75 % to
the rep's own customers, 25 % to the team's); objections 价格/交付/资质/其他 on 60 % of visits; location evidence on
75-97 % depending on the rep. N/10 support requests with 2 task cards each (N/5 cards): first response lognormal
(median 45 min), completion lognormal (median 6 h), 5 % rejected, 1.5 % stuck (open or claimed: overdue), escalated
when the first response took over 2 h or the card is overdue. Rows go in with Core ``insert()`` executemany in
batches, in one transaction, through the app's ``Database`` (SQLite PRAGMAs of storage/db.py); PostgreSQL is then
``VACUUM ANALYZE``d (the state autovacuum reaches after such a load); SQLite is left as the app leaves it (no
ANALYZE). Generation time is printed; it is not the figure.

Measured (the bare SQL first, then ``compute_digest``, in the same run; medians and p90 after one warm-up):

* **bare SQL** (baseline): hand-written SQL for the core figures of a day digest of the same scope: the scope from
  ``users``, visits and no-location per rep, plan items done/total per rep by the EXISTS rule, top-3 objections,
  requests opened and their cards by state, overdue open cards per department, first responses of the day per
  department (median/p90 in Python), A customers with this month's visits and their last visit.
* **digest**: ``bot.services.digest.compute_digest(session, settings, viewer, period="day", day=..., now=...)``.
  If it cannot be imported yet, the table says so and gives the bare SQL only; the script needs no change then.

Cases: one manager (mgr05, 15 reps; ``--runs`` runs), the director (600 reps; ``--runs`` // 3 runs), all 40
managers one after the other (3 rounds: the total and per digest). Targets: one digest < 200 ms, and a digest at
the largest size at most 2x the same digest at the smallest. The query plans of the bare queries are printed, with
any full scan of a large table flagged. Exit status 1 when a target is missed or a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parents[1]
for path in (ROOT, SCRIPT.parent):  # the app, and bench/procs.py's helpers
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from procs import pg_admin  # noqa: E402
from sqlalchemy import ARRAY, BindParameter, Date, String, Table, bindparam, func, insert, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncConnection  # noqa: E402

from bot.config import Settings, parse_settings  # noqa: E402
from bot.services.plan_rule import span  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import Base, User, UTCDateTime  # noqa: E402
from storage.vocab import PlanPeriod, PlanStatus, RequestStatus, TaskState  # noqa: E402

try:  # written in parallel (issue 12); the bench runs without it and says so
    from bot.services.digest import compute_digest
except ImportError:
    compute_digest = None

TZ = ZoneInfo("Asia/Shanghai")
# The digest time on a Tuesday: today's visits are in, today's plans are due.
NOW = datetime(2026, 11, 24, 18, 0, tzinfo=TZ).astimezone(UTC)
DAY = date(2026, 11, 24)
HISTORY_DAYS = 182
MANAGERS = 40
REPS_PER_MANAGER = 15
CUSTOMERS = 5000
MEMBERS_PER_DEPARTMENT = 6
ONE_MANAGER = "mgr05"
DIRECTOR = "dir01"
BATCH = 5000
TARGET_MS = 200.0
TARGET_RATIO = 2.0
DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
OBJECTIONS = (None, "价格", "交付", "资质", "其他")
OBJECTION_WEIGHTS = (40, 25, 15, 12, 8)
OTHER_NOTES = ("科室预算冻结", "主任出差", "竞品在做跟台", "等招标结果")
WARDS = ("骨科", "脊柱外科", "关节外科", "检验科", "心内科")
CONTACTS = ("张主任", "李主任", "王护士长", "陈医生", "刘医生")
NEXT_STEPS = ("下周送资料", "约主任演示", "跟进试用反馈", "安排跟台", "")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍鹏辉建红雪琳晨宇浩然思远子涵欣怡"
CITIES = ("杭州", "宁波", "温州", "嘉兴", "湖州", "绍兴", "金华", "衢州", "舟山", "台州", "丽水")
KINDS = ("人民医院", "中医院", "中心医院", "妇幼保健院", "第一医院", "第二医院", "骨科医院", "肿瘤医院")
DEPARTMENT_PAIRS = (("logistics", "marketing"), ("logistics", "compliance"), ("marketing", "compliance"))
OPEN_STATES = (TaskState.OPEN.value, TaskState.CLAIMED.value, TaskState.NEED_INFO.value)


@dataclass(frozen=True)
class Sizes:
    visits: int
    cards: int
    plans: int

    @classmethod
    def for_visits(cls, visits: int) -> Sizes:
        """The issue's proportions: 1M visits, 200k cards, 300k plan items."""
        return cls(visits, visits // 5 // 2 * 2, visits * 3 // 10)


def settings_for(url: str) -> Settings:
    return parse_settings({"database": {"url": url}, "logging": {"level": "WARNING"}}, "<bench>")


# ---- the org --------------------------------------------------------------------------------------------------


@dataclass
class Org:
    users: list[dict[str, Any]]
    customers: list[dict[str, Any]]
    reps: list[str]
    managers: list[str]
    manager_of: dict[str, str]
    own: dict[str, list[int]]  # rep -> their customers
    team: dict[str, list[int]]  # rep -> their manager's reps' customers
    members: dict[str, list[str]]  # department -> people
    reliability: dict[str, float]  # rep -> share of plan items they do
    located: dict[str, float]  # rep -> share of visits with location evidence


def person(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + rng.choice(GIVEN) + (rng.choice(GIVEN) if rng.random() < 0.6 else "")


def build_org(rng: random.Random, departments: list[str]) -> Org:
    created = NOW - timedelta(days=HISTORY_DAYS + 30)
    users: list[dict[str, Any]] = []

    def user(uid: str, roles: list[str], manager: str | None, department: str | None = None) -> None:
        users.append(
            {
                "id": uid,
                "name": person(rng),
                "roles": roles,
                "department": department,
                "manager_id": manager,
                "locale": "zh-CN",
                "active": True,
                "created_at": created,
                "updated_at": created,
                "console_tokens_after": None,
            }
        )

    user(DIRECTOR, ["director"], None)
    managers = [f"mgr{m + 1:02d}" for m in range(MANAGERS)]
    manager_of: dict[str, str] = {}
    for m in managers:
        # A regional manager (mgr01) with three team managers below: nested scopes.
        manager_of[m] = "mgr01" if m in ("mgr02", "mgr03", "mgr04") else DIRECTOR
        user(m, ["manager"], manager_of[m])
    reps = [f"rep{r + 1:03d}" for r in range(MANAGERS * REPS_PER_MANAGER)]
    for r, rep in enumerate(reps):
        manager_of[rep] = managers[r // REPS_PER_MANAGER]
        user(rep, ["rep"], manager_of[rep])
    members: dict[str, list[str]] = {}
    for d in departments:
        members[d] = [f"{d[:3]}{k + 1:02d}" for k in range(MEMBERS_PER_DEPARTMENT + 1)]
        for k, uid in enumerate(members[d]):
            user(uid, ["head"] if k == 0 else ["member"], None, d)
    customers: list[dict[str, Any]] = []
    own: dict[str, list[int]] = defaultdict(list)
    for c in range(CUSTOMERS):
        cid, rep = c + 1, reps[c % len(reps)]
        lat, lon = 28.0 + rng.random() * 3, 119.0 + rng.random() * 3
        customers.append(
            {
                "id": cid,
                "name": f"{CITIES[c % len(CITIES)]}市{KINDS[(c // len(CITIES)) % len(KINDS)]}{c + 1}分院",
                "aliases": [],
                "grade": rng.choices("ABC", (20, 30, 50))[0],
                "rep_id": rep,
                "address": None,
                "latitude": lat,
                "longitude": lon,
                "wards": list(WARDS[:3]),
                "contacts": [],
                "created_at": created,
                "updated_at": created,
            }
        )
        own[rep].append(cid)
    by_manager: dict[str, list[int]] = defaultdict(list)
    for rep in reps:
        by_manager[manager_of[rep]].extend(own[rep])
    team = {rep: by_manager[manager_of[rep]] for rep in reps}
    reliability = {rep: rng.uniform(0.6, 0.98) for rep in reps}
    located = {rep: rng.uniform(0.75, 0.97) for rep in reps}
    return Org(users, customers, reps, managers, manager_of, dict(own), team, members, reliability, located)


def scope_of(manager_rows: list[tuple[str, str | None, list[str]]], viewer: str) -> list[str]:
    """The reps a viewer sees: a director everyone, a manager the reps below them at any depth."""
    roles = {uid: r for uid, _, r in manager_rows}
    if "director" in roles.get(viewer, []):
        return sorted(uid for uid, _, r in manager_rows if "rep" in r)
    below: dict[str | None, list[str]] = defaultdict(list)
    for uid, mgr, _ in manager_rows:
        below[mgr].append(uid)
    out, stack, seen = [], [viewer], {viewer}
    while stack:
        for uid in below.get(stack.pop(), []):
            if uid not in seen:
                seen.add(uid)
                stack.append(uid)
                if "rep" in roles[uid]:
                    out.append(uid)
    return sorted(out)


# ---- the history ----------------------------------------------------------------------------------------------


def working_days(history_days: int = HISTORY_DAYS) -> list[date]:
    """Monday-Friday from ``history_days`` before the benchmark's day up to it (no holiday calendar)."""
    first = DAY - timedelta(days=history_days)
    return [first + timedelta(days=i) for i in range(history_days + 1) if (first + timedelta(days=i)).weekday() < 5]


def shares(total: int, n: int) -> list[int]:
    """``total`` split over ``n`` slots as evenly as integers allow."""
    base, extra = divmod(total, n)
    return [base + (1 if i < extra else 0) for i in range(n)]


def local(day: date, minutes: float) -> datetime:
    """The instant ``minutes`` after midnight of ``day`` in org time, in UTC."""
    return (datetime(day.year, day.month, day.day, tzinfo=TZ) + timedelta(minutes=minutes)).astimezone(UTC)


@dataclass
class Counter:
    """Rows generated per table (the smoke test compares them with the database)."""

    rows: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def history(
    org: Org, sizes: Sizes, rng: random.Random, history_days: int = HISTORY_DAYS
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(table, row) in time order, day by day: plan items, visits, support requests and their task cards."""
    days = working_days(history_days)
    weeks: dict[date, list[date]] = defaultdict(list)
    for d in days:
        weeks[d - timedelta(days=d.weekday())].append(d)
    week_first = {v[0]: k for k, v in weeks.items()}
    week_plans = sizes.plans * 15 // 100
    day_plan_q = shares(sizes.plans - week_plans, len(days))
    week_plan_q = dict(zip(week_first, shares(week_plans, len(week_first)), strict=True))
    visit_q = shares(sizes.visits, len(days))
    request_q = shares(sizes.cards // 2, len(days))
    pending: dict[date, list[tuple[str, int]]] = defaultdict(list)  # day -> planned visits of week items
    ids = {"plan": 0, "visit": 0, "request": 0, "card": 0}
    rep_at = 0

    def plan_row(rep: str, customer: int, period: PlanPeriod, day: date) -> dict[str, Any]:
        first, starts, ends = span(period, day, TZ)
        ids["plan"] += 1
        source = rng.choices(("chat", "manager", "import"), (80, 15, 5))[0]
        made = local(first, 8 * 60) - timedelta(days=1)
        return {
            "id": ids["plan"],
            "rep_id": rep,
            "customer_id": customer,
            "period": period.value,
            "day": first,
            "purpose": "新品试用" if rng.random() < 0.1 else None,
            "starts_at": starts,
            "ends_at": ends,
            "status": PlanStatus.CANCELLED.value if rng.random() < 0.03 else PlanStatus.OPEN.value,
            "source": source,
            "created_by": org.manager_of[rep] if source == "manager" else rep,
            "created_at": made,
            "updated_at": made,
        }

    def pick(rep: str, taken: set[tuple[str, int]]) -> int:
        for _ in range(20):
            pool = org.own[rep] if rng.random() < 0.7 else org.team[rep]
            c = rng.choice(pool)
            if (rep, c) not in taken:
                return c
        return next(c for c in org.team[rep] if (rep, c) not in taken)

    for di, day in enumerate(days):
        # Plan items made for this day (and, on the week's first working day, for the week).
        planned: list[tuple[str, int]] = []
        taken: set[tuple[str, int]] = set()
        for _ in range(day_plan_q[di]):
            rep = org.reps[rep_at % len(org.reps)]
            rep_at += 1
            row = plan_row(rep, pick(rep, taken), PlanPeriod.DAY, day)
            taken.add((rep, row["customer_id"]))
            yield "plan_items", row
            if row["status"] == PlanStatus.OPEN.value and rng.random() < org.reliability[rep]:
                planned.append((rep, row["customer_id"]))
        if day in week_first:
            wtaken: set[tuple[str, int]] = set()
            open_days = weeks[week_first[day]]
            for _ in range(week_plan_q[day]):
                rep = org.reps[rep_at % len(org.reps)]
                rep_at += 1
                row = plan_row(rep, pick(rep, wtaken), PlanPeriod.WEEK, day)
                wtaken.add((rep, row["customer_id"]))
                yield "plan_items", row
                if row["status"] == PlanStatus.OPEN.value and rng.random() < org.reliability[rep]:
                    pending[rng.choice(open_days)].append((rep, row["customer_id"]))
        planned += pending.pop(day, [])
        planned += [p for p in planned if rng.random() < 0.1]  # visited twice: still one item done
        # The day's visits: the planned ones, then unplanned ones up to the day's share.
        todo = planned[: visit_q[di]]
        while len(todo) < visit_q[di]:
            rep = rng.choice(org.reps)
            todo.append((rep, rng.choice(org.own[rep] if rng.random() < 0.75 else org.team[rep])))
        for at, rep, customer in sorted((local(day, rng.uniform(510, 1050)), r, c) for r, c in todo):
            ids["visit"] += 1
            objection = rng.choices(OBJECTIONS, OBJECTION_WEIGHTS)[0]
            located = rng.random() < org.located[rep]
            cust = org.customers[customer - 1]
            yield (
                "visits",
                {
                    "id": ids["visit"],
                    "rep_id": rep,
                    "customer_id": customer,
                    "ward": rng.choice(WARDS),
                    "contacts": [rng.choice(CONTACTS)],
                    "topics": None,
                    "products": [],
                    "objection": objection,
                    "objection_note": rng.choice(OTHER_NOTES) if objection == "其他" else None,
                    "commitments": None,
                    "next_step": rng.choice(NEXT_STEPS) or None,
                    "attitude": None,
                    "visited_at": at,
                    "latitude": cust["latitude"] + 0.001 if located else None,
                    "longitude": cust["longitude"] + 0.001 if located else None,
                    "distance_m": rng.uniform(20, 400) if located else None,
                    "location_at": at - timedelta(minutes=5) if located else None,
                    "location_status": "ok" if located else "missing",
                    "locked": True,
                    "unlocked_until": None,
                    "source_channel": "wecom",
                    "created_at": at + timedelta(minutes=3),
                    "updated_at": at + timedelta(minutes=3),
                },
            )
        # The day's support requests, two task cards each.
        for _ in range(request_q[di]):
            ids["request"] += 1
            rid = ids["request"]
            rep = rng.choice(org.reps)
            created = local(day, rng.uniform(540, 1020))
            cards = [card_row(ids, rid, dept, created, org, rng) for dept in DEPARTMENT_PAIRS[rid % 3]]
            for c in cards:
                c["rep_id"] = rep
            states = {c["state"] for c in cards}
            status = (
                RequestStatus.OPEN
                if states & set(OPEN_STATES)
                else RequestStatus.REJECTED
                if TaskState.REJECTED.value in states
                else RequestStatus.DONE
            )
            yield (
                "support_requests",
                {
                    "id": rid,
                    "type_key": "surgery_support",
                    "rep_id": rep,
                    "customer_id": rng.choice(org.own[rep]),
                    "ward": rng.choice(WARDS),
                    "fields": {"ward": "骨科", "note": ""},
                    "visit_id": None,
                    "status": status.value,
                    "source_channel": "wecom",
                    "created_at": created,
                    "updated_at": max(c["updated_at"] for c in cards),
                    "needed_at": None,
                },
            )
            for c in cards:
                yield "task_cards", c


def card_row(
    ids: dict[str, int], rid: int, dept: str, created: datetime, org: Org, rng: random.Random
) -> dict[str, Any]:
    ids["card"] += 1
    first = created + timedelta(minutes=rng.lognormvariate(math.log(45), 1.0))
    done = first + timedelta(hours=rng.lognormvariate(math.log(6), 0.9))
    stuck = rng.random() < 0.015
    holder = rng.choice(org.members[dept][1:])
    state, first_at, done_at, since = TaskState.OPEN.value, None, None, created
    if first <= NOW and not (stuck and rng.random() < 0.5):
        first_at, since = first, first
        state = TaskState.NEED_INFO.value if rng.random() < 0.08 else TaskState.CLAIMED.value
        if done <= NOW and not stuck:
            state = TaskState.REJECTED.value if rng.random() < 0.05 else TaskState.DONE.value
            done_at, since = done, done
    due_at = created + timedelta(hours=24)
    overdue = state in OPEN_STATES and due_at < NOW
    escalated = overdue or (first_at is not None and first_at - created > timedelta(hours=2))
    return {
        "id": ids["card"],
        "request_id": rid,
        "department": dept,
        "ref": f"task-{rid}-{dept}",
        "title": f"跟台资料 {rid}",
        "state": state,
        "resume_state": TaskState.CLAIMED.value if state == TaskState.NEED_INFO.value else None,
        "holder_id": holder if first_at is not None else None,
        "require_claim": True,
        "evidence": "none",
        "first_response_hours": 2.0,
        "complete_hours": 24.0,
        "respond_by": created + timedelta(hours=2),
        "due_at": due_at,
        "attachments": [],
        "questions": [],
        "reject_reason": "资料不全" if state == TaskState.REJECTED.value else None,
        "recipients": org.members[dept],
        "version": 2 if done_at else 1 if first_at else 0,
        "created_at": created,
        "state_since": since,
        "first_response_at": first_at,
        "done_at": done_at if state == TaskState.DONE.value else None,
        "closed_at": done_at,
        "updated_at": since,
        "policy": {},
        "esc_step": 1 if escalated else 0,
        "next_due_at": None,
        "repeat_step": None,
        "repeat_at": None,
        "snoozed_until": None,
        "notices": (1 + int(overdue)) if escalated else 0,
        "watchers": [org.members[dept][0]] if escalated else [],
        "notice_log": [],
        "copies": [],
        "supersedes_id": None,
        "needed_at": None,
        "lead_hours": None,
    }


# The tables the generator writes, parents first.
TABLES: dict[str, Table] = {
    t: Base.metadata.tables[t] for t in ("users", "customers", "plan_items", "visits", "support_requests", "task_cards")
}


async def generate(db: Database, sizes: Sizes, seed: int, history_days: int = HISTORY_DAYS) -> tuple[Counter, Org]:
    """Load the org and its history into ``db`` (already migrated), in one transaction, ``BATCH`` rows a statement."""
    rng = random.Random(seed)
    org = build_org(rng, list(settings_for(db.url).departments))
    counter = Counter()
    buffers: dict[str, list[dict[str, Any]]] = defaultdict(list)

    async def flush(conn: AsyncConnection, table: str) -> None:
        rows = buffers.pop(table, [])
        if rows:
            await conn.execute(insert(TABLES[table]), rows)
            counter.rows[table] += len(rows)

    async with db.core_transaction() as conn:
        for table, rows in (("users", org.users), ("customers", org.customers)):
            buffers[table] = list(rows)
            await flush(conn, table)
        # Parents before children: a request's cards follow it, flushed with it.
        for table, row in history(org, sizes, rng, history_days):
            buffers[table].append(row)
            if table == "support_requests" and len(buffers[table]) >= BATCH:
                await flush(conn, "support_requests")
                await flush(conn, "task_cards")
            elif table in ("visits", "plan_items") and len(buffers[table]) >= BATCH:
                await flush(conn, table)
        for table in ("plan_items", "visits", "support_requests", "task_cards"):
            await flush(conn, table)
        if not db.is_sqlite:
            for table in ("customers", "plan_items", "visits", "support_requests", "task_cards"):
                await conn.execute(
                    text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
                )
    if not db.is_sqlite:
        async with db.engine.connect() as conn:
            auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await auto.execute(text("VACUUM ANALYZE"))
    return counter, org


# ---- the bare aggregate SQL -----------------------------------------------------------------------------------

UTC_TYPE = UTCDateTime()
# The tables that grow with the history, and their aliases in BARE: reading one whole is a full scan.
LARGE = {"visits", "v", "plan_items", "pi", "support_requests", "sr", "task_cards", "tc"}
# name -> SQL; every query takes the scope's reps as :reps and the day's span as :start / :end.
BARE = {
    "visits per rep": """
        SELECT rep_id, count(*), sum(CASE WHEN location_status = 'ok' THEN 0 ELSE 1 END) FROM visits
        WHERE rep_id {REPS} AND visited_at >= :start AND visited_at < :end GROUP BY rep_id""",
    "plan done/total per rep": """
        SELECT pi.rep_id, count(*), sum(CASE WHEN EXISTS (
            SELECT 1 FROM visits v WHERE v.rep_id = pi.rep_id AND v.customer_id = pi.customer_id
            AND v.visited_at >= pi.starts_at AND v.visited_at < pi.ends_at) THEN 1 ELSE 0 END)
        FROM plan_items pi WHERE pi.rep_id {REPS} AND pi.day >= :first AND pi.day <= :last AND pi.status = 'open'
        GROUP BY pi.rep_id""",
    "top objections": """
        SELECT objection, count(*) AS n FROM visits
        WHERE rep_id {REPS} AND visited_at >= :start AND visited_at < :end AND objection IS NOT NULL
        GROUP BY objection ORDER BY n DESC, objection LIMIT 3""",
    "requests opened, cards by state": """
        SELECT tc.state, count(*), count(DISTINCT sr.id) FROM support_requests sr
        JOIN task_cards tc ON tc.request_id = sr.id
        WHERE sr.rep_id {REPS} AND sr.created_at >= :start AND sr.created_at < :end GROUP BY tc.state""",
    "overdue open cards per department": """
        SELECT tc.department, count(*) FROM task_cards tc JOIN support_requests sr ON sr.id = tc.request_id
        WHERE tc.state IN ('open', 'claimed', 'need_info') AND tc.due_at < :now AND sr.rep_id {REPS}
        GROUP BY tc.department""",
    "first responses of the day": """
        SELECT tc.department, tc.created_at, tc.first_response_at FROM task_cards tc
        WHERE tc.first_response_at >= :start AND tc.first_response_at < :end
        AND EXISTS (SELECT 1 FROM support_requests sr WHERE sr.id = tc.request_id AND sr.rep_id {REPS})""",
    "A customers: month visits, last visit": """
        SELECT cu.id, (SELECT count(*) FROM visits v WHERE v.customer_id = cu.id
                       AND v.visited_at >= :month AND v.visited_at < :end),
               (SELECT max(v.visited_at) FROM visits v WHERE v.customer_id = cu.id AND v.visited_at < :end)
        FROM customers cu WHERE cu.grade = 'A' AND cu.rep_id {REPS}""",
}


def bare_statement(sql: str, sqlite: bool) -> Any:
    """The query with its parameters typed. The scope's reps are one parameter (a JSON array on SQLite, an array on
    PostgreSQL): an expanded IN list of 600 reps costs SQLAlchemy more to render than the queries take."""
    if "{REPS}" in sql:
        sql = sql.replace("{REPS}", "IN (SELECT value FROM json_each(:reps))" if sqlite else "= ANY(:reps)")
    used = [p for p in ("reps", "start", "end", "now", "month", "first", "last") if f":{p}" in sql]
    binds: list[BindParameter[Any]] = []
    for p in used:
        if p == "reps":
            binds.append(bindparam(p, type_=String() if sqlite else ARRAY(String())))
        elif p in ("first", "last"):
            binds.append(bindparam(p, type_=Date()))
        else:
            binds.append(bindparam(p, type_=UTC_TYPE))
    return text(sql).bindparams(*binds), used


def bare_params(reps: list[str], sqlite: bool) -> dict[str, Any]:
    _, start, end = span(PlanPeriod.DAY, DAY, TZ)
    month = datetime(DAY.year, DAY.month, 1, tzinfo=TZ).astimezone(UTC)
    reps_param: Any = json.dumps(reps) if sqlite else reps
    return {"reps": reps_param, "start": start, "end": end, "now": NOW, "month": month, "first": DAY, "last": DAY}


@dataclass
class BareFigures:
    visits: int = 0
    no_location: int = 0
    plan_items: int = 0
    plan_done: int = 0
    top: list[tuple[str, int]] = field(default_factory=list)
    requests_opened: int = 0
    cards: dict[str, int] = field(default_factory=dict)
    overdue: int = 0
    first_response: dict[str, tuple[float, float]] = field(default_factory=dict)  # dept -> median, p90 minutes
    a_customers: int = 0


def as_utc(value: datetime | str) -> datetime:
    """An instant read by a text() query: SQLite gives the stored naive UTC text back, asyncpg a datetime."""
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value.astimezone(UTC)


def quantile(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


async def bare_digest(
    conn: AsyncConnection, viewer: str, per_query: dict[str, list[float]] | None = None
) -> BareFigures:
    """The core figures of ``viewer``'s day digest in hand-written SQL (the scope from ``users`` included);
    ``per_query`` collects each query's ms."""
    users = [(u, m, list(r or [])) for u, m, r in await conn.execute(select(User.id, User.manager_id, User.roles))]
    params = bare_params(scope_of(users, viewer), conn.dialect.name == "sqlite")
    out = BareFigures()
    results = {}
    for name, sql in BARE.items():
        stmt, used = bare_statement(sql, conn.dialect.name == "sqlite")
        t = time.perf_counter()
        results[name] = (await conn.execute(stmt, {p: params[p] for p in used})).all()
        if per_query is not None:
            per_query[name].append((time.perf_counter() - t) * 1e3)
    for _, n, missing in results["visits per rep"]:
        out.visits += n
        out.no_location += int(missing or 0)
    for _, n, done in results["plan done/total per rep"]:
        out.plan_items += n
        out.plan_done += int(done or 0)
    out.top = [(o, n) for o, n in results["top objections"]]
    for state, n, requests in results["requests opened, cards by state"]:
        out.cards[state] = n
        out.requests_opened = max(out.requests_opened, requests)  # approximate: distinct per state
    out.overdue = sum(n for _, n in results["overdue open cards per department"])
    waits: dict[str, list[float]] = defaultdict(list)
    for dept, created, first in results["first responses of the day"]:
        waits[dept].append((as_utc(first) - as_utc(created)).total_seconds() / 60)
    out.first_response = {d: (statistics.median(w), quantile(w, 0.9)) for d, w in waits.items()}
    out.a_customers = len(results["A customers: month visits, last visit"])
    return out


async def explain(db: Database, viewer: str) -> list[tuple[str, str, bool]]:
    """(query, condensed plan, full scan of a large table?) for each bare query."""
    async with db.engine.connect() as conn:
        users = [(u, m, list(r or [])) for u, m, r in await conn.execute(select(User.id, User.manager_id, User.roles))]
        params = bare_params(scope_of(users, viewer), db.is_sqlite)
        out = []
        for name, sql in BARE.items():
            stmt, used = bare_statement(("EXPLAIN QUERY PLAN " if db.is_sqlite else "EXPLAIN ") + sql, db.is_sqlite)
            rows = (await conn.execute(stmt, {p: params[p] for p in used})).all()
            if db.is_sqlite:
                lines = [str(r[-1]) for r in rows]
                scan = any(x.startswith("SCAN ") and "USING" not in x and x.split()[1] in LARGE for x in lines)
            else:
                lines = [str(r[0]).strip() for r in rows]
                scan = any(
                    x.lstrip("-> ").startswith("Seq Scan on " + t)
                    for x in lines
                    for t in ("visits", "task_cards", "plan_items", "support_requests")
                )
            out.append((name, "; ".join(lines), scan))
        return out


# ---- measuring ------------------------------------------------------------------------------------------------


@dataclass
class Timing:
    bare: list[float] = field(default_factory=list)
    digest: list[float] = field(default_factory=list)
    per: int = 1  # digests per measured unit (all managers: 40)
    per_query: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))


@dataclass
class Case:
    backend: str
    sizes: Sizes
    gen_s: float = 0.0
    db_mb: float = 0.0
    timings: dict[str, Timing] = field(default_factory=dict)
    plans: list[tuple[str, str, bool]] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    figures: BareFigures | None = None


async def timed(fn: Callable[[], Awaitable[Any]], runs: int) -> list[float]:
    await fn()  # warm-up
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        await fn()
        out.append((time.perf_counter() - t) * 1e3)
    return out


async def run_digest(db: Database, settings: Settings, viewer: str) -> Any:
    assert compute_digest is not None
    async with db.read() as s:
        user = await s.get(User, viewer)
        return await compute_digest(s, settings, user, period="day", day=DAY, now=NOW)


async def measure(case: Case, db: Database, settings: Settings, org: Org, runs: int) -> None:
    cases = {
        f"one manager ({ONE_MANAGER})": ([ONE_MANAGER], runs),
        "director": ([DIRECTOR], max(3, runs // 3)),
        f"all {len(org.managers)} managers": (org.managers, 3),
    }
    async with db.engine.connect() as conn:
        case.figures = await bare_digest(conn, ONE_MANAGER)
        for label, (viewers, n) in cases.items():
            timing = case.timings[label] = Timing(per=len(viewers))

            async def bare(viewers: list[str] = viewers, timing: Timing = timing) -> None:
                for v in viewers:
                    await bare_digest(conn, v, timing.per_query if timing.per == 1 else None)
                await conn.rollback()

            timing.bare = await timed(bare, n)
    if compute_digest is None:
        return
    try:
        await measure_digest(case, db, settings, cases)
    except Exception as exc:  # an unfinished compute_digest must not cost the bare figures
        case.checks.append(f"compute_digest failed: {exc!r}")


async def measure_digest(case: Case, db: Database, settings: Settings, cases: dict[str, tuple[list[str], int]]) -> None:
    """compute_digest's times per case, after checking its core figures against the bare SQL's."""
    digest = await run_digest(db, settings, ONE_MANAGER)
    fig = case.figures
    assert fig is not None
    got = (digest.totals.visits, digest.totals.no_location, digest.totals.plan_items, digest.totals.plan_done)
    want = (fig.visits, fig.no_location, fig.plan_items, fig.plan_done)
    if got != want:
        case.checks.append(f"{ONE_MANAGER}: digest (visits, no_location, plan_items, plan_done) {got} != bare {want}")
    for label, (viewers, n) in cases.items():

        async def dig(viewers: list[str] = viewers) -> None:
            for v in viewers:
                await run_digest(db, settings, v)

        case.timings[label].digest = await timed(dig, n)


async def db_size_mb(db: Database, path: Path | None) -> float:
    if path is not None:
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 1e6
    async with db.read() as s:
        return float(await s.scalar(text("SELECT pg_database_size(current_database())")) or 0) / 1e6


async def table_counts(db: Database) -> dict[str, int]:
    async with db.read() as s:
        return {t: int(await s.scalar(select(func.count()).select_from(TABLES[t])) or 0) for t in TABLES}


@contextlib.asynccontextmanager
async def scratch_database(backend: str, tmp: Path, pg_url: str, keep: bool) -> Any:
    """(url, SQLite path or None) of a fresh, empty database, removed afterwards unless ``keep``."""
    if backend == "sqlite":
        path = tmp / f"digest_{uuid.uuid4().hex[:8]}.db"
        try:
            yield f"sqlite+aiosqlite:///{path}", path
        finally:
            if not keep:
                for p in path.parent.glob(path.name + "*"):
                    p.unlink()
        return
    name = f"salesbot_bench_digest_{uuid.uuid4().hex[:8]}"
    assert name != "test"
    await pg_admin(pg_url, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(pg_url).set(database=name).render_as_string(hide_password=False), None
    finally:
        if keep:
            print(f"  kept PostgreSQL database {name}")
        else:
            await pg_admin(pg_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def history_days(visits: int, args: argparse.Namespace) -> int:
    """~6 months for every size; with ``--same-day-load`` the largest size spans them and a smaller one spans
    proportionally fewer days (the same visits, plans and cards per day: only the history grows)."""
    if not args.same_day_load:
        return HISTORY_DAYS
    return max(14, round(HISTORY_DAYS * visits / max(args.visits)))


async def run_case(backend: str, sizes: Sizes, args: argparse.Namespace, tmp: Path) -> Case:
    case = Case(backend, sizes)
    async with scratch_database(backend, tmp, args.pg_url, args.keep) as (url, path):
        settings = settings_for(url)
        db = Database(url)
        try:
            await upgrade(db)
            t = time.perf_counter()
            days = history_days(sizes.visits, args)
            counter, org = await generate(db, sizes, args.seed, days)
            case.gen_s = time.perf_counter() - t
            print(f"  generated {dict(counter.rows)} over {days} days in {case.gen_s:.1f} s", flush=True)
            counts = await table_counts(db)
            want = {"visits": sizes.visits, "task_cards": sizes.cards, "plan_items": sizes.plans}
            for table, n in want.items():
                if counts[table] != n:
                    case.checks.append(f"{table}: {counts[table]} rows, expected {n}")
            case.db_mb = await db_size_mb(db, path)
            case.plans = await explain(db, ONE_MANAGER)
            await measure(case, db, settings, org, args.runs)
        finally:
            await db.dispose()
    return case


# ---- report ---------------------------------------------------------------------------------------------------


def label(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k" if n % 1000 == 0 else str(n)


def p90(xs: list[float]) -> float:
    return quantile(xs, 0.9) if xs else float("nan")


def med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def report(cases: list[Case]) -> bool:
    ok = True
    print()
    if compute_digest is None:
        print("compute_digest is missing (bot/services/digest.py not importable): bare SQL figures only.\n")
    head = (
        f"{'backend':<10} {'visits':>6} {'case':<20} {'bare ms':>8} {'bare p90':>8} {'digest ms':>9}"
        f" {'p90':>7} {'ratio':>6} {'bare ratio':>10}  target"
    )
    print(head)
    smallest = {b: min(c.sizes.visits for c in cases if c.backend == b) for b in {c.backend for c in cases}}
    for c in cases:
        base = next(x for x in cases if x.backend == c.backend and x.sizes.visits == smallest[c.backend])
        for name, t in c.timings.items():
            bare, dig = [x / t.per for x in t.bare], [x / t.per for x in t.digest]
            bt, dt = base.timings[name], base.timings[name]
            bare_ratio = med(bare) / med([x / bt.per for x in bt.bare])
            ratio = med(dig) / med([x / dt.per for x in dt.digest]) if dig else float("nan")
            if dig:
                met = p90(dig) < TARGET_MS and (c is base or ratio <= TARGET_RATIO)
                verdict = "met" if met else "MISSED"
                ok &= met
            else:
                verdict = "pending (no compute_digest)"
            per = " per digest" if t.per > 1 else ""
            print(
                f"{c.backend:<10} {label(c.sizes.visits):>6} {name:<20} {med(bare):8.1f} {p90(bare):8.1f}"
                f" {med(dig):9.1f} {p90(dig):7.1f} {ratio:6.2f} {bare_ratio:10.2f}"
                f"  < {TARGET_MS:.0f} ms{per}, ratio <= {TARGET_RATIO:.0f}: {verdict}"
            )
    print(f"\n(all managers: per digest; ratio: to the same case at {label(min(smallest.values()))} visits)")
    print("\ngeneration (not the figure):")
    for c in cases:
        s = c.sizes
        print(
            f"  {c.backend} {label(s.visits)} visits, {label(s.cards)} cards, {label(s.plans)} plan items:"
            f" {c.gen_s:.1f} s, {c.db_mb:.0f} MB"
        )
    for c in cases:
        if c.figures is not None:
            f = c.figures
            print(
                f"\n{c.backend} {label(c.sizes.visits)}: {ONE_MANAGER} today: visits {f.visits}, no location"
                f" {f.no_location}, plan {f.plan_done}/{f.plan_items}, top {f.top}, requests {f.requests_opened},"
                f" cards {f.cards}, overdue {f.overdue}, A customers {f.a_customers}"
            )
    print("\nbare SQL per query, median ms (one manager / director):")
    for c in cases:
        one, boss = (t for t in c.timings.values() if t.per == 1)
        for name in BARE:
            mine, theirs = med(one.per_query[name]), med(boss.per_query[name])
            print(f"  {c.backend} {label(c.sizes.visits)} {name}: {mine:.1f} / {theirs:.1f}")
    print("\nquery plans of the bare SQL (FULL SCAN: a large table read whole):")
    for c in cases:
        for name, plan, scan in c.plans:
            print(f"  {c.backend} {label(c.sizes.visits)} {name}{' FULL SCAN' if scan else ''}: {plan}")
    for c in cases:
        for e in c.checks:
            print(f"CHECK FAILED {c.backend} {label(c.sizes.visits)}: {e}")
            ok = False
    return ok


async def main_async(args: argparse.Namespace, tmp: Path) -> int:
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    cases = []
    for backend in args.backends:
        for n in args.visits:
            sizes = Sizes.for_visits(n)
            print(f"{backend}: {sizes}", flush=True)
            cases.append(await run_case(backend, sizes, args, tmp))
    ok = report(cases)
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0 if ok else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--visits", default="100000,1000000", help="visits per database, comma separated")
    p.add_argument("--backends", default="sqlite,postgresql")
    p.add_argument("--runs", type=int, default=30, help="measured runs of one manager's digest (director: /3)")
    p.add_argument("--pg-url", default=os.environ.get("SALESBOT_BENCH_PG_URL", DEFAULT_PG))
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--same-day-load",
        action="store_true",
        help="smaller sizes span fewer days (same load per day) instead of the same ~6 months",
    )
    p.add_argument("--keep", action="store_true", help="keep the SQLite files and PostgreSQL databases")
    args = p.parse_args(argv)
    args.visits = sorted({int(x) for x in args.visits.split(",") if x.strip()})
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if set(args.backends) - {"sqlite", "postgresql"}:
        p.error("backends: sqlite, postgresql")
    if "postgresql" in args.backends and make_url(args.pg_url).host not in LOOPBACK:
        p.error("--pg-url must point at loopback")
    if any(n < 1000 for n in args.visits) or args.runs < 1:
        p.error("at least 1,000 visits and one run")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="salesbot-digest-"))
    try:
        return asyncio.run(main_async(args, tmp))
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            with contextlib.suppress(OSError):
                shutil.rmtree(tmp)


if __name__ == "__main__":
    sys.exit(main())
