"""Department queues (bot/services/queue.py): who sees which open cards, in what order, a page at a time, and the
live copy 打开 sends. Cards are made with the real ``requests.create`` and then put into the state a test needs.

The clock stands at Monday 2026-11-23 10:00 in Shanghai (tests/conftest.py T0).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select

from bot.core.errors import DomainError
from bot.core.intents import UpdateCard
from bot.infra.clock import FixedClock
from bot.runtime import Runtime
from bot.services import queue, recipients
from bot.services import requests as svc
from cards.queue import PAGE_SIZE, QueueKind, QueueView
from storage.models import Customer, TaskCard, User
from storage.vocab import TaskState

VALUES = {
    "stock_reservation": {"product": "骨钉", "quantity": "20", "needed_by": "2026-11-30"},
    "surgery_support": {"ward": "骨科", "surgery_date": "2026-11-30", "kit": "脊柱A包"},
    "material": {"topic": "产品手册"},
}


async def make_card(
    rt: Runtime,
    *,
    type_key: str = "stock_reservation",
    department: str = "logistics",
    due_in: timedelta = timedelta(hours=8),
    state: TaskState = TaskState.OPEN,
    holder: str | None = None,
    notices: int = 0,
    created: datetime | None = None,
) -> int:
    """A request of ``type_key`` by rep01 at 浙一; its ``department`` card put into the given state."""
    now = rt.clock.now()
    async with rt.db.transaction() as s:
        rep = await s.get(User, "rep01")
        customer = await s.scalar(select(Customer).where(Customer.name == "浙江大学医学院附属第一医院"))
        assert rep is not None and customer is not None
        _, cards = await svc.create(
            s,
            settings=rt.settings,
            type_key=type_key,
            values=dict(VALUES[type_key]),
            customer=customer,
            rep=rep,
            visit_id=None,
            now=created or now,
            channel="console",
        )
        [card] = [c for c, _ in cards if c.department == department]
        card.due_at = now + due_in
        card.state = state
        card.holder_id = holder
        card.notices = notices
        await s.flush()
        return card.id


async def view(rt: Runtime, user_id: str, kind: QueueKind = QueueKind.MINE, page: int = 0) -> QueueView:
    async with rt.db.read() as s:
        user = await s.get(User, user_id)
        assert user is not None
        return await queue.load(s, rt.settings, user, kind, page, rt.clock.now())


def ids(v: QueueView) -> list[int]:
    return [e.card_id for e in v.entries]


@contextmanager
def selects(rt: Runtime) -> Iterator[list[str]]:
    """The SELECT statements the database is sent meanwhile (counted at the driver, the boundary)."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    engine = rt.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


# ---- who sees what ----------------------------------------------------------------------------------------------


async def test_a_member_sees_what_they_hold_and_the_unclaimed_of_their_department_by_deadline(
    runtime: Runtime,
) -> None:
    unclaimed = await make_card(runtime, due_in=timedelta(hours=5))
    mine = await make_card(runtime, due_in=timedelta(hours=1), state=TaskState.CLAIMED, holder="log01")
    waiting = await make_card(runtime, due_in=timedelta(hours=3), state=TaskState.NEED_INFO)
    mine_waiting = await make_card(runtime, due_in=timedelta(hours=4), state=TaskState.NEED_INFO, holder="log01")
    await make_card(runtime, state=TaskState.CLAIMED, holder="log02")  # someone else's
    await make_card(runtime, state=TaskState.DONE, holder="log01")  # closed
    await make_card(runtime, type_key="material", department="marketing")  # another department

    v = await view(runtime, "log01")

    assert v.kind == QueueKind.MINE and v.scope == ""
    assert ids(v) == [mine, waiting, mine_waiting, unclaimed]
    assert [(e.state, e.holder) for e in v.entries] == [
        ("claimed", "吴敏"),
        ("need_info", ""),
        ("need_info", "吴敏"),
        ("open", ""),
    ]
    first = v.entries[0]
    assert (first.card_no, first.request_no, first.type_name, first.customer, first.rep) == (
        f"T{mine}",
        "R2",
        "备货",
        "浙一",
        "王磊",
    )
    assert (v.total, v.unclaimed, v.overdue, v.pages) == (4, 1, 0, 1)


async def test_overdue_cards_come_first_and_say_they_are_late_by_the_injected_clock(
    runtime: Runtime, clock: FixedClock
) -> None:
    later = await make_card(runtime, due_in=timedelta(hours=30))
    soon = await make_card(runtime, due_in=timedelta(hours=2), state=TaskState.CLAIMED, holder="log01")
    assert [e.overdue for e in (await view(runtime, "log01")).entries] == [False, False]

    clock.set(clock.now() + timedelta(hours=5))
    v = await view(runtime, "log01")

    assert ids(v) == [soon, later] and [e.overdue for e in v.entries] == [True, False]
    assert v.overdue == 1
    overdue = await view(runtime, "log01", QueueKind.OVERDUE)
    assert ids(overdue) == [soon] and overdue.kind == QueueKind.OVERDUE


async def test_a_head_sees_the_whole_department_overdue_and_escalated_first_with_holders(
    runtime: Runtime, clock: FixedClock
) -> None:
    plain = await make_card(runtime, due_in=timedelta(hours=2))
    escalated = await make_card(runtime, due_in=timedelta(hours=20), notices=1)
    held = await make_card(runtime, due_in=timedelta(hours=10), state=TaskState.CLAIMED, holder="log02")
    late = await make_card(runtime, due_in=timedelta(minutes=30), state=TaskState.CLAIMED, holder="log01")
    await make_card(runtime, type_key="material", department="marketing")
    clock.set(clock.now() + timedelta(hours=1))

    for kind in (QueueKind.MINE, QueueKind.DEPARTMENT):  # 我的任务 of a head is the department's queue
        v = await view(runtime, "log_head", kind)
        assert v.kind == QueueKind.DEPARTMENT and v.scope == "物流", kind
        assert ids(v) == [late, escalated, plain, held], kind
        assert [e.holder for e in v.entries] == ["吴敏", "", "", "郑浩"]
        assert (v.overdue, v.escalated, v.unclaimed) == (1, 1, 2)
    assert ids(await view(runtime, "log_head", QueueKind.OVERDUE)) == [late]
    # A member's own queue leaves out what someone else holds.
    assert ids(await view(runtime, "log01")) == [late, plain, escalated]


async def test_a_director_sees_every_departments_counts_and_the_oldest_cards_first(
    runtime: Runtime, clock: FixedClock
) -> None:
    start = clock.now()
    newer = await make_card(runtime, created=start + timedelta(hours=1))
    older = await make_card(runtime, type_key="material", department="marketing", created=start)
    late = await make_card(runtime, due_in=timedelta(hours=-1), state=TaskState.CLAIMED, holder="log01")

    for user in ("dir01", "admin01"):
        v = await view(runtime, user, QueueKind.DEPARTMENT)
        assert v.kind == QueueKind.ALL and v.scope is None
        assert ids(v) == [older, late, newer]  # by creation (the last two: same instant, by number)
        assert [(d.department_name, d.open, d.unclaimed, d.overdue) for d in v.departments] == [
            ("物流", 2, 1, 1),
            ("市场", 1, 1, 0),
            ("合规", 0, 0, 0),
        ]
    assert [e.department_name for e in (await view(runtime, "dir01", QueueKind.OVERDUE)).entries] == ["物流"]


async def test_the_unclaimed_queue_holds_only_open_cards_nobody_took(runtime: Runtime) -> None:
    free = await make_card(runtime)
    await make_card(runtime, state=TaskState.CLAIMED, holder="log01")
    await make_card(runtime, state=TaskState.NEED_INFO)
    for user in ("log01", "log_head"):
        v = await view(runtime, user, QueueKind.UNCLAIMED)
        assert ids(v) == [free] and v.kind == QueueKind.UNCLAIMED and v.scope == "物流", user


@pytest.mark.parametrize("user_id", ["rep01", "mgr01"])
async def test_someone_without_a_department_role_is_refused_with_a_hint(runtime: Runtime, user_id: str) -> None:
    await make_card(runtime)
    with pytest.raises(DomainError) as refused:
        await view(runtime, user_id)
    assert refused.value.key == "queue.not_member"


# ---- paging -----------------------------------------------------------------------------------------------------


async def test_pages_hold_at_most_page_size_cards_each_once_and_stay_within_the_pages(runtime: Runtime) -> None:
    made = [await make_card(runtime, due_in=timedelta(hours=n + 1)) for n in range(2 * PAGE_SIZE + 1)]

    pages = [await view(runtime, "log01", page=n) for n in range(3)]

    assert [len(p.entries) for p in pages] == [PAGE_SIZE, PAGE_SIZE, 1]
    assert [card for p in pages for card in ids(p)] == made
    assert {(p.page, p.pages, p.total) for p in pages} == {(0, 3, 9), (1, 3, 9), (2, 3, 9)}
    assert ids(await view(runtime, "log01", page=7)) == ids(pages[2])  # the queue shrank meanwhile
    assert ids(await view(runtime, "log01", page=-1)) == ids(pages[0])


async def test_a_page_costs_two_selects_however_many_cards_and_departments(runtime: Runtime) -> None:
    for n in range(6):
        await make_card(runtime, due_in=timedelta(hours=n + 1), state=TaskState.CLAIMED, holder="log01")
    await make_card(runtime, type_key="surgery_support")
    for user, kind in (("log01", QueueKind.MINE), ("log_head", QueueKind.DEPARTMENT), ("dir01", QueueKind.ALL)):
        async with runtime.db.read() as s:
            actor = await s.get(User, user)
            assert actor is not None
            with selects(runtime) as seen:
                v = await queue.load(s, runtime.settings, actor, kind, 0, runtime.clock.now())
        assert len(v.entries) == PAGE_SIZE and all(e.rep == "王磊" and e.customer for e in v.entries)
        assert len(seen) == 2, (user, seen)


# ---- 打开: a live copy ----------------------------------------------------------------------------------------------


async def test_an_opened_copy_has_live_buttons_and_every_later_update_reaches_it(runtime: Runtime) -> None:
    card_id = await make_card(runtime)
    async with runtime.db.transaction() as s:
        member = await s.get(User, "log01")
        assert member is not None
        copy = await queue.open_card(s, runtime.settings, member, card_id, "wecom", "card_action")
    async with runtime.db.transaction() as s:
        card = await s.get(TaskCard, card_id)
        assert card is not None
        assert copy.ref == f"{card.ref}-o1" and copy.title.startswith("物流｜备货")
        assert [b.text for b in copy.buttons] == ["认领", "需补充", "驳回"]
        assert card.copies == [{"n": 1, "user": "log01", "channel": "wecom"}]
        member = await s.get(User, "log01")
        assert member is not None
        svc.claim(s, card, member, runtime.clock.now(), "console")
        intents = await recipients.task_card_intents(
            s, runtime.settings, runtime.channel_for, card, first=False, fallback="console"
        )
    [update] = [i for i in intents if isinstance(i, UpdateCard) and i.card.ref == copy.ref]
    assert (update.channel, update.user_ids) == ("wecom", ("log01",))
    assert [b.text for b in update.card.buttons] == ["完成", "需补充", "驳回"]


async def test_copies_are_numbered_afresh_and_only_the_newest_are_kept(runtime: Runtime) -> None:
    card_id = await make_card(runtime)
    refs = []
    for _ in range(recipients.MAX_COPIES + 2):
        async with runtime.db.transaction() as s:
            member = await s.get(User, "log02")
            assert member is not None
            refs.append((await queue.open_card(s, runtime.settings, member, card_id, "console", "card_action")).ref)
    assert len(set(refs)) == len(refs)  # a platform may refuse a message id used twice
    async with runtime.db.read() as s:
        card = await s.get(TaskCard, card_id)
        assert card is not None
        assert [c["n"] for c in card.copies] == list(range(3, recipients.MAX_COPIES + 3))


async def test_opening_another_departments_card_is_refused_and_audited(runtime: Runtime) -> None:
    card_id = await make_card(runtime)
    async with runtime.db.transaction() as s:
        outsider = await s.get(User, "mkt01")
        assert outsider is not None
        with pytest.raises(DomainError) as refused:
            await queue.open_card(s, runtime.settings, outsider, card_id, "console", "card_action")
    assert refused.value.key == "task.not_allowed"
    assert refused.value.denial is not None and refused.value.denial.action == "task.denied"
    async with runtime.db.read() as s:
        card = await s.get(TaskCard, card_id)
        assert card is not None and card.copies == []
