"""A small hand-made data set for the digest (tests/services/test_digest.py, tests/test_digest_cli.py): every figure
the tests assert is computed by hand in tests/services/test_digest.py from the rows below.

Org (Asia/Shanghai): d1 director; m1 manager of r1 王磊, r2 李娜, r3 张伟 and of m2, a manager under m1 with r4 赵敏;
m3 a second team (manager of d1's) with r5 孙丽; log1 a logistics member. The clock: Tuesday 2026-12-01 18:00.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete

from bot.services.digest_model import (
    CustomerGap,
    DepartmentLine,
    Digest,
    ObjectionCount,
    OpenFollowup,
    RepLine,
    Scope,
    Totals,
)
from bot.services.plan_rule import span
from storage.db import Database
from storage.models import Customer, PlanItem, SupportRequest, TaskCard, User, UserIdentity, Visit
from storage.vocab import PlanPeriod, PlanStatus

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 18, 0, tzinfo=TZ).astimezone(UTC)
DAY = date(2026, 12, 1)
CREATED = datetime(2026, 10, 1, tzinfo=UTC)

# (id, name, roles, department, manager)
PEOPLE = [
    ("d1", "赵总", ["director"], None, None),
    ("m1", "陈经理", ["manager"], None, "d1"),
    ("r1", "王磊", ["rep"], None, "m1"),
    ("r2", "李娜", ["rep"], None, "m1"),
    ("r3", "张伟", ["rep"], None, "m1"),
    ("m2", "刘经理", ["manager"], None, "m1"),
    ("r4", "赵敏", ["rep"], None, "m2"),
    ("m3", "周经理", ["manager"], None, "d1"),
    ("r5", "孙丽", ["rep"], None, "m3"),
    ("log1", "吴敏", ["member"], "logistics", None),
]
# (key, name, grade, rep)
CUSTOMERS = [
    ("C1", "甲医院", "A", "r1"),
    ("C2", "乙医院", "A", "r1"),
    ("C3", "丙医院", "A", "r2"),
    ("C4", "丁医院", "B", "r2"),
    ("C5", "戊医院", "A", "r5"),
    ("C6", "己医院", "A", "r4"),
    ("C7", "庚医院", "A", "r3"),
    ("C8", "辛医院", "A", "r3"),
    ("C9", "壬医院", "A", "r3"),
]


def local(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=TZ).astimezone(UTC)


# (rep, customer, local visited_at, has location, objection)
VISITS = [
    ("r1", "C1", local(12, 1, 10), True, "价格"),  # V1: completes r1's 12-01 item C1
    ("r1", "C2", local(11, 30, 15), True, "交付"),  # V2: the Monday: completes r1's week item C2 only
    ("r2", "C3", local(12, 1, 9, 30), True, "价格"),  # V3 and V4: two visits, one plan item
    ("r2", "C3", local(12, 1, 15), False, "交付"),  # V4: no location
    ("r3", "C4", local(12, 1, 11), False, "价格"),  # V5: unplanned, no location
    ("r4", "C6", local(12, 1, 16), True, "交付"),  # V6
    ("r5", "C1", local(12, 1, 13), True, "价格"),  # V7: the other team at m1's customer C1
    ("r3", "C4", local(12, 1, 14), True, "资质"),  # V10
    ("r5", "C5", local(12, 1, 17), False, None),  # V11
    ("r1", "C1", local(11, 10, 10), True, None),  # V8: last month
    ("r3", "C8", local(10, 15, 10), True, None),  # V12: 47 days before 12-01
    ("r3", "C9", local(11, 1, 10), True, None),  # V13: 30 days before 12-01
]
# (rep, customer, period, day, status)
PLANS = [
    ("r1", "C1", PlanPeriod.DAY, date(2026, 12, 1), PlanStatus.OPEN),  # done (V1)
    ("r1", "C2", PlanPeriod.DAY, date(2026, 12, 1), PlanStatus.OPEN),  # not done (V2 is the day before)
    ("r1", "C2", PlanPeriod.WEEK, date(2026, 11, 30), PlanStatus.OPEN),  # done (V2); counts in the week of 11-30
    ("r1", "C3", PlanPeriod.DAY, date(2026, 12, 1), PlanStatus.CANCELLED),  # never counts
    ("r1", "C1", PlanPeriod.DAY, date(2026, 12, 2), PlanStatus.OPEN),  # tomorrow: not done
    ("r2", "C3", PlanPeriod.DAY, date(2026, 12, 1), PlanStatus.OPEN),  # done (V3, V4)
    ("r2", "C4", PlanPeriod.DAY, date(2026, 12, 1), PlanStatus.OPEN),  # not done (r3 went there, not r2)
    ("r4", "C6", PlanPeriod.DAY, date(2026, 12, 1), PlanStatus.OPEN),  # done (V6)
    ("r5", "C5", PlanPeriod.DAY, date(2026, 12, 1), PlanStatus.OPEN),  # done (V11)
]
# (card key, rep, type, department, created, first response, done, due, notices)
CARDS = [
    ("K1", "r1", "stock_reservation", "logistics", local(12, 1, 10), local(12, 1, 10, 30), local(12, 1, 17), None, 0),
    # 11:30 → 13:30 over the lunch break: 60 working minutes.
    ("K2", "r2", "stock_reservation", "logistics", local(12, 1, 11, 30), local(12, 1, 13, 30), None, None, 0),
    # Surgery support counts calendar hours: 07:00 → 09:30 is 150 minutes (30 in working hours).
    ("K3", "r2", "surgery_support", "logistics", local(12, 1, 7), local(12, 1, 9, 30), None, None, 0),
    # Unanswered at 18:00, 150 working minutes after 15:30: past the 2 h target.
    ("K4", "r4", "stock_reservation", "logistics", local(12, 1, 15, 30), None, None, None, 0),
    # 10:00 → 14:00: 180 working minutes.
    ("K5", "r1", "stock_reservation", "marketing", local(12, 1, 10), local(12, 1, 14), None, None, 0),
    ("K6", "r3", "stock_reservation", "logistics", local(12, 1, 9), local(12, 1, 9, 45), None, None, 0),
    # The other team.
    ("K7", "r5", "stock_reservation", "logistics", local(12, 1, 10), local(12, 1, 10, 5), None, None, 0),
    # Opened last week, overdue since 11-30 18:00 and escalated, still open.
    ("K8", "r1", "stock_reservation", "logistics", local(11, 25, 10), local(11, 25, 11), None, local(11, 30, 18), 1),
    # Closed long before the period: counts nowhere.
    (
        "K9",
        "r2",
        "stock_reservation",
        "logistics",
        local(11, 20, 10),
        local(11, 20, 10, 10),
        local(11, 22, 10),
        local(11, 21, 10),
        1,
    ),
]


async def seed(db: Database) -> None:
    """Replace the directory with the org above and store the customers, visits, plans and cards."""
    async with db.transaction() as s:
        await s.execute(delete(UserIdentity))
        await s.execute(delete(User))
        await s.execute(delete(Customer))
        for uid, name, roles, dept, manager in PEOPLE:
            s.add(
                User(
                    id=uid,
                    name=name,
                    roles=roles,
                    department=dept,
                    manager_id=manager,
                    created_at=CREATED,
                    updated_at=CREATED,
                )
            )
        ids: dict[str, Customer] = {}
        for key, name, grade, rep in CUSTOMERS:
            ids[key] = Customer(name=name, grade=grade, rep_id=rep, created_at=CREATED, updated_at=CREATED)
            s.add(ids[key])
        await s.flush()
        for rep, cust, when, located, objection in VISITS:
            s.add(
                Visit(
                    rep_id=rep,
                    customer_id=ids[cust].id,
                    visited_at=when,
                    objection=objection,
                    latitude=30.25 if located else None,
                    longitude=120.17 if located else None,
                    location_status="ok" if located else "missing",
                    source_channel="console",
                    created_at=when,
                    updated_at=when,
                )
            )
        for rep, cust, period, day, status in PLANS:
            first, starts, ends = span(period, day, TZ)
            s.add(
                PlanItem(
                    rep_id=rep,
                    customer_id=ids[cust].id,
                    period=period.value,
                    day=first,
                    starts_at=starts,
                    ends_at=ends,
                    status=status.value,
                    source="chat",
                    created_at=CREATED,
                    updated_at=CREATED,
                )
            )
        for key, rep, type_key, dept, created, responded, done, due, notices in CARDS:
            request = SupportRequest(
                type_key=type_key,
                rep_id=rep,
                customer_id=ids["C1"].id,
                source_channel="console",
                created_at=created,
                updated_at=created,
            )
            s.add(request)
            await s.flush()
            s.add(
                TaskCard(
                    request_id=request.id,
                    rep_id=rep,
                    department=dept,
                    ref=f"t-{key}",
                    title=key,
                    state="done" if done else "claimed" if responded else "open",
                    first_response_hours=2,
                    complete_hours=24,
                    respond_by=created + timedelta(hours=2),
                    due_at=due or local(12, 3, 18),
                    created_at=created,
                    state_since=created,
                    first_response_at=responded,
                    done_at=done,
                    closed_at=done,
                    updated_at=created,
                    notices=notices,
                )
            )


def long_name(i: int) -> str:
    """A long rep name (WeCom's byte limit)."""
    return f"欧阳司马诸葛长孙第{i:02d}号代表（华东大区浙江省杭州市西湖区）"


def make_digest(reps: int = 3, objection: str = "价格") -> Digest:
    """A made-up digest of ``reps`` reps with long names, all below the threshold (for rendering)."""
    lines = tuple(RepLine(f"r{i:02d}", long_name(i), 3, 5, i % 5, (i % 5) / 5, True, 1) for i in range(reps))
    totals = Totals(
        visits=3 * reps,
        plan_items=5 * reps,
        plan_done=sum(r.plan_done for r in lines),
        plan_completion=0.4,
        reach=0.5,
        no_location=reps,
        a_coverage=0.25,
        a_touched=0.75,
        requests_opened=4,
        cards_opened=6,
        cards_claimed=5,
        cards_done=1,
        cards_overdue=2,
        cards_escalated=1,
    )
    return Digest(
        scope=Scope("mgr01", "day", DAY, DAY, tuple(r.user for r in lines)),
        totals=totals,
        reps=lines,
        departments=(
            DepartmentLine("logistics", 5, 52.5, 150.0, 0.6, 1),
            DepartmentLine("marketing", 1, 30.0, 30.0, 1.0, 0),
        ),
        top_objections=(ObjectionCount(objection, 3), ObjectionCount("交付", 2)),
        a_customers_not_visited=tuple(CustomerGap(f"浙江省第{i:02d}人民医院（集团）分院", 40 + i) for i in range(reps)),
        open_followups=(OpenFollowup("r00", long_name(0), date(2026, 11, 30)),),
    )
