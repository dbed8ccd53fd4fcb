"""Group handling: queued events of different senders share one transaction; one sender's events keep their order;
a failing event is handled alone and does not cost the others their work; the lag metrics."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import event, select

from bot.core.events import TextMessage
from bot.infra import i18n
from bot.infra.clock import FixedClock
from bot.pipeline import Pipeline
from bot.runtime import Runtime
from storage.models import Conversation, InboundEvent, OutboxMessage

SENDERS = ["rep01", "rep02", "mgr01", "dir01", "admin01"]


def text(sender: str, n: int, body: str = "帮助") -> TextMessage:
    return TextMessage(channel="console", sender=sender, dedup_key=f"{sender}:batch-{n}", text=body)


@contextmanager
def counting_commits(runtime: Runtime) -> Iterator[list[int]]:
    """Commits on the runtime's engine while the block runs (one entry per COMMIT)."""
    commits: list[int] = []

    def on_commit(_conn: Any) -> None:
        commits.append(1)

    engine = runtime.db.engine.sync_engine
    event.listen(engine, "commit", on_commit)
    try:
        yield commits
    finally:
        event.remove(engine, "commit", on_commit)


async def outbox_texts(runtime: Runtime, recipient: str) -> list[str]:
    async with runtime.db.read() as s:
        rows = await s.scalars(
            select(OutboxMessage).where(OutboxMessage.recipient == recipient).order_by(OutboxMessage.id)
        )
        return [str(r.payload.get("text", "")) for r in rows]


async def statuses(runtime: Runtime) -> dict[str, list[str]]:
    async with runtime.db.read() as s:
        rows = (await s.execute(select(InboundEvent.sender, InboundEvent.status).order_by(InboundEvent.id))).all()
    out: dict[str, list[str]] = {}
    for sender, status in rows:
        out.setdefault(sender, []).append(status)
    return out


async def test_queued_events_of_different_senders_are_handled_in_one_transaction(runtime: Runtime) -> None:
    await runtime.outbox.stop()  # only the pipeline commits below
    pipeline = Pipeline(runtime, concurrency=1)
    for i, sender in enumerate(SENDERS):
        await pipeline.ingest(text(sender, i))
    with counting_commits(runtime) as commits:
        pipeline.start()
        await pipeline.join()
        await pipeline.stop()
    assert len(commits) == 1
    assert await statuses(runtime) == {s: ["done"] for s in SENDERS}
    for sender in SENDERS:
        assert len(await outbox_texts(runtime, sender)) == 1


async def test_events_of_one_sender_are_handled_in_order_across_batches(runtime: Runtime) -> None:
    await runtime.outbox.stop()
    pipeline = Pipeline(runtime, concurrency=3)
    # rep01 starts a visit dialog, cancels it, then cancels again (nothing left to cancel): order decides the answers.
    await pipeline.ingest(text("rep01", 1, "拜访"))
    await pipeline.ingest(text("rep02", 1))
    await pipeline.ingest(text("rep01", 2, "取消"))
    await pipeline.ingest(text("rep02", 2))
    await pipeline.ingest(text("rep01", 3, "取消"))
    pipeline.start()
    await pipeline.join()
    await pipeline.stop()
    rep01 = await outbox_texts(runtime, "rep01")
    assert rep01[-2:] == [i18n.t("zh-CN", "cancelled"), i18n.t("zh-CN", "nothing_to_cancel")]
    assert await statuses(runtime) == {"rep01": ["done"] * 3, "rep02": ["done"] * 2}


async def test_a_poisoned_event_fails_alone_and_the_others_are_handled(runtime: Runtime) -> None:
    await runtime.outbox.stop()
    now = runtime.clock.now()
    async with runtime.db.transaction() as s:
        for i, sender in enumerate(SENDERS):
            payload = text(sender, i).model_dump(mode="json")
            if sender == "rep02":
                payload = {"kind": "text", "channel": "console"}  # not a valid event: its handling raises
            s.add(
                InboundEvent(
                    channel="console",
                    dedup_key=f"{sender}:poison-{i}",
                    sender=sender,
                    kind="text",
                    payload=payload,
                    status="pending",
                    attempts=0,
                    received_at=now,
                )
            )
    pipeline = Pipeline(runtime, concurrency=1)
    assert await pipeline.recover() == len(SENDERS)
    pipeline.start()
    await pipeline.join()
    await pipeline.stop()
    assert await statuses(runtime) == {s: ["failed" if s == "rep02" else "done"] for s in SENDERS}
    for sender in SENDERS:
        [reply] = await outbox_texts(runtime, sender)  # the help text, or the internal-error apology for rep02
        assert reply
    assert 'salesbot_errors_total{where="handler"} 1.0' in runtime.metrics.render().decode()


async def test_lag_gauge_is_the_age_of_the_oldest_unhandled_event(runtime: Runtime, clock: FixedClock) -> None:
    pipeline = Pipeline(runtime, concurrency=1)
    assert pipeline.oldest_age() == 0.0
    await pipeline.ingest(text("rep01", 1))
    clock.set(clock.now() + timedelta(seconds=7))
    await pipeline.ingest(text("rep02", 1))
    clock.set(clock.now() + timedelta(seconds=3))
    assert pipeline.oldest_age() == 10.0
    pipeline.start()
    await pipeline.join()
    await pipeline.stop()
    assert pipeline.oldest_age() == 0.0
    await runtime.settle()
    text_out = runtime.metrics.render().decode()
    assert "salesbot_pipeline_lag_seconds 0.0" in text_out
    assert 'salesbot_pipeline_delay_seconds_bucket{le="10.0",stage="handled"} 2.0' in text_out
    assert 'salesbot_pipeline_delay_seconds_count{stage="delivered"}' in text_out


@contextmanager
def counting_statements(runtime: Runtime) -> Iterator[list[str]]:
    """SQL statements sent on the runtime's engine while the block runs."""
    statements: list[str] = []

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    engine = runtime.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)


async def queued(runtime: Runtime, events: list[TextMessage]) -> Pipeline:
    """A one-worker pipeline holding ``events``, not started."""
    pipeline = Pipeline(runtime, concurrency=1)
    for ev in events:
        await pipeline.ingest(ev)
    return pipeline


async def run(pipeline: Pipeline) -> None:
    """Handle what is queued (one batch when the senders differ)."""
    pipeline.start()
    await pipeline.join()
    await pipeline.stop()


async def handle(runtime: Runtime, events: list[TextMessage]) -> None:
    await run(await queued(runtime, events))


async def test_bookkeeping_statements_of_a_batch_do_not_grow_with_its_events(runtime: Runtime) -> None:
    await runtime.outbox.stop()
    one = await queued(runtime, [text("rep01", 1)])
    with counting_statements(runtime) as alone:
        await run(one)
    many = await queued(runtime, [text(sender, 2) for sender in SENDERS])
    with counting_statements(runtime) as together:
        await run(many)
    # One SELECT each of the events, their senders and their conversations; one executemany each of the outbox
    # rows and the events marked done (``帮助`` itself reads nothing).
    assert len(together) == len(alone)
    assert await statuses(runtime) == {s: ["done"] * (2 if s == "rep01" else 1) for s in SENDERS}
    for sender in SENDERS:
        assert len(await outbox_texts(runtime, sender)) == (2 if sender == "rep01" else 1)


async def conversation_rows(runtime: Runtime) -> dict[str, tuple[str | None, int, Any]]:
    async with runtime.db.read() as s:
        rows = await s.scalars(select(Conversation))
        return {r.user_id: (r.flow, r.version, r.updated_at) for r in rows}


async def test_a_message_outside_any_dialog_writes_no_conversation_row(runtime: Runtime, clock: FixedClock) -> None:
    await runtime.outbox.stop()
    await handle(runtime, [text("rep01", 1), text("rep02", 1, "拜访")])
    await handle(runtime, [text("rep02", 2, "取消")])
    after_cancel = await conversation_rows(runtime)
    assert set(after_cancel) == {"rep02"}  # 帮助 outside a dialog inserted nothing for rep01
    assert after_cancel["rep02"][:2] == (None, 2)
    clock.set(clock.now() + timedelta(minutes=1))
    await handle(runtime, [text("rep01", 2), text("rep02", 3)])
    assert await conversation_rows(runtime) == after_cancel  # nothing changed, nothing written
    assert (await outbox_texts(runtime, "rep02"))[-2] == i18n.t("zh-CN", "cancelled")


async def test_an_unregistered_sender_does_not_hold_back_the_batch(runtime: Runtime) -> None:
    await runtime.outbox.stop()
    pipeline = await queued(runtime, [text("stranger", 1), text("rep01", 1)])
    with counting_commits(runtime) as commits:
        await run(pipeline)
    assert len(commits) == 1
    async with runtime.db.read() as s:
        rows = {r.sender: r for r in await s.scalars(select(InboundEvent))}
    assert (rows["stranger"].status, rows["stranger"].error, rows["stranger"].attempts) == (
        "done",
        "sender not in directory",
        1,
    )
    assert (rows["rep01"].status, rows["rep01"].error, rows["rep01"].attempts) == ("done", None, 1)
    assert rows["rep01"].handled_at is not None
    assert await outbox_texts(runtime, "stranger") == []
    assert len(await outbox_texts(runtime, "rep01")) == 1
