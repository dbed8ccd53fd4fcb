"""Inbound pipeline: persist (dedup) → acknowledge → route → handler → domain rows + outbox in one commit."""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter
from pydantic import TypeAdapter
from sqlalchemy import bindparam, select, update
from sqlalchemy import insert as insert_plain
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from bot import media_intake, outbox
from bot.core import conversation, outbound
from bot.core.events import InboundEvent
from bot.core.intents import Intent, SendText
from bot.core.routing import Context, Refused
from bot.infra import audit, i18n
from bot.infra.batching import GroupCommitter
from storage.models import AttachmentGrant, Base, OutboxMessage, User
from storage.models import InboundEvent as InboundRow

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)
_event_adapter: TypeAdapter[InboundEvent] = TypeAdapter(InboundEvent)


@dataclass(frozen=True)
class _Queued:
    """An accepted event waiting to be handled; ``received`` is when it was stored (the runtime's clock)."""

    event_id: int
    channel: str
    sender: str
    received: datetime
    # The event's kind: a media event of a fetching channel is downloaded first (bot.media_intake).
    kind: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.channel, self.sender)


@dataclass(frozen=True)
class IngestResult:
    """``duplicate`` is True when the platform re-delivered an event we already hold."""

    event_id: int | None
    duplicate: bool


class Pipeline:
    """Owns the inbound queue and its workers; events of one sender are handled one at a time, in order.

    A worker takes up to ``batch_size`` queued events of different senders and handles them in one transaction
    (``process_batch``); the next event of a sender waits until the previous one is committed."""

    def __init__(self, runtime: Runtime, concurrency: int = 8, batch_size: int = 16) -> None:
        self.rt = runtime
        # Queued events per sender in arrival order, and the senders whose next event may start now (none of
        # theirs is being handled), oldest first; the sender travels with the id, so choosing a batch needs no read.
        self._queues: dict[tuple[str, str], collections.deque[_Queued]] = {}
        self._ready: collections.deque[tuple[str, str]] = collections.deque()
        self._queued = 0
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._unfinished = 0
        # Senders whose event is being handled now: their next events wait (per-sender order).
        self._active: dict[tuple[str, str], _Queued] = {}
        self._workers: list[asyncio.Task[None]] = []
        # Callers waiting for what an event's handling committed (``handled``): event id → future of its intents.
        self._watchers: dict[int, asyncio.Future[tuple[Intent, ...]]] = {}
        self._busy: list[bool] = []
        self._stopping = False
        # SQLite has one writer: two workers (one committing, one preparing its batch) keep it busy; more would
        # only open connections beyond the pool's five, each with its PRAGMAs.
        self._concurrency = min(concurrency, 2) if runtime.db.is_sqlite else concurrency
        self._batch_size = batch_size
        # The pause between download attempts of a received file (tests replace it).
        self.media_sleep: Callable[[float], Awaitable[object]] = asyncio.sleep
        # The children of metrics.inbound by labels: labels() takes a lock and builds a key on every call.
        self._counters: dict[tuple[str, str, str], Counter] = {}
        insert = sqlite_insert if runtime.db.is_sqlite else pg_insert
        # A Core statement on the table, not the ORM entity: executed on the session's connection it skips the ORM
        # bulk-insert layer (per-row state, mapper bookkeeping); compiled once and cached.
        table = Base.metadata.tables[InboundRow.__tablename__]
        self._insert_stmt = (
            insert(table)
            .on_conflict_do_nothing(index_elements=["channel", "dedup_key"])
            .returning(table.c.id, table.c.channel, table.c.dedup_key)
        )
        # The pipeline's bookkeeping statements (see _handle_many), Core on the tables, compiled once.
        select_rows = select(table.c.id, table.c.status, table.c.payload).where(
            table.c.id.in_(bindparam("ids", expanding=True))
        )
        self._select_stmt = select_rows if runtime.db.is_sqlite else select_rows.with_for_update()
        self._done_stmt = (
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(
                status="done",
                attempts=table.c.attempts + 1,
                error=bindparam("error"),
                handled_at=bindparam("handled_at"),
            )
        )
        self._outbox_stmt = insert_plain(Base.metadata.tables[OutboxMessage.__tablename__])
        self._ingest: GroupCommitter[tuple[InboundEvent, tuple[Base, ...]], IngestResult] = GroupCommitter(
            self._insert_batch
        )

    async def ingest(self, event: InboundEvent, extras: Sequence[Base] = ()) -> IngestResult:
        """Persist the event (committed when this returns) so it can be acknowledged; a re-delivery is
        recognised by its dedup key. ``extras`` are rows written in the same transaction when the event is new
        (e.g. the console's echo of what the user typed). Concurrent calls share one transaction."""
        result = await self._ingest.submit((event, tuple(extras)))
        self._count(event.channel, event.kind, "duplicate" if result.duplicate else "accepted")
        if result.duplicate:
            log.info("duplicate %s event %s from %s ignored", event.channel, event.dedup_key, event.sender)
        elif result.event_id is not None:
            self._put(_Queued(result.event_id, event.channel, event.sender, self.rt.clock.now(), event.kind))
        return result

    def _count(self, channel: str, kind: str, result: str) -> None:
        key = (channel, kind, result)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = self.rt.metrics.inbound.labels(channel, kind, result)
        counter.inc()

    async def _insert_batch(self, batch: Sequence[tuple[InboundEvent, tuple[Base, ...]]]) -> list[IngestResult]:
        """One INSERT … ON CONFLICT DO NOTHING RETURNING for the whole batch, extras for the new events."""
        now = self.rt.clock.now()
        keys = [(event.channel, event.dedup_key[:200]) for event, _ in batch]
        first: dict[tuple[str, str], int] = {}
        for i, key in enumerate(keys):
            first.setdefault(key, i)
        values = [
            {
                "channel": batch[i][0].channel,
                "dedup_key": key[1],
                "sender": batch[i][0].sender,
                "kind": batch[i][0].kind,
                "payload": batch[i][0].model_dump(mode="json"),
                "status": "pending",
                "attempts": 0,
                "received_at": now,
            }
            for key, i in first.items()
        ]
        ids: list[int | None] = []
        if not any(extras for _, extras in batch):
            # Nothing for the ORM to write (most platform callbacks): no session at all.
            async with self.rt.db.core_transaction(urgent=True) as conn:
                created = await self._insert_rows(conn, values)
            ids = [created.get(key) if first[key] == i else None for i, key in enumerate(keys)]
        else:
            async with self.rt.db.transaction(urgent=True) as s:
                created = await self._insert_rows(await s.connection(), values)
                for i, key in enumerate(keys):
                    ids.append(created.get(key) if first[key] == i else None)
                    if ids[-1] is not None:
                        s.add_all(batch[i][1])
        return [IngestResult(row_id, row_id is None) for row_id in ids]

    async def _insert_rows(self, conn: AsyncConnection, values: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
        """(channel, dedup key) → id of the rows this statement created (the others were already there)."""
        # One constant statement, executed for many rows: SQLAlchemy compiles it once and batches the rows.
        rows = await conn.execute(self._insert_stmt, values)
        return {(channel, key): row_id for row_id, channel, key in rows.all()}

    def start(self) -> None:
        self._stopping = False
        self._busy = [False] * self._concurrency
        self._workers = [asyncio.create_task(self._work(i), name=f"inbound-{i}") for i in range(self._concurrency)]
        self.rt.metrics.pipeline_oldest.set_function(self.oldest_age)

    async def stop(self, grace: float = 10.0) -> None:
        """Finish the events being handled (up to ``grace`` seconds), leave the rest queued in the database."""
        self._stopping = True
        for task, busy in zip(self._workers, self._busy, strict=True):
            if not busy:
                task.cancel()
        await asyncio.wait(self._workers, timeout=grace)
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        await self._ingest.wait_idle()
        self._workers = []
        self._busy = []

    async def recover(self) -> int:
        """Queue every event persisted but not handled (e.g. the process died after acknowledging it)."""
        async with self.rt.db.read() as s:
            rows = (
                await s.execute(
                    select(
                        InboundRow.id, InboundRow.channel, InboundRow.sender, InboundRow.received_at, InboundRow.kind
                    )
                    .where(InboundRow.status == "pending")
                    .order_by(InboundRow.id)
                )
            ).all()
        now = self.rt.clock.now()
        for event_id, channel, sender, received_at, kind in rows:
            self._put(_Queued(event_id, channel, sender, received_at or now, kind))
        if rows:
            log.info("recovering %s unhandled inbound event(s)", len(rows))
        return len(rows)

    async def handled(self, event_id: int, within: float) -> tuple[Intent, ...] | None:
        """The intents the handling of the stored event ``event_id`` committed, once it is committed; None when that
        takes longer than ``within`` seconds. Call it right after ``ingest`` returned the id (no ``await`` in
        between: a worker cannot have taken the event yet). A refused event gives its reply, a failed one nothing.
        A card channel uses it to answer a tap with the tapper's updated card (a platform that waits for it)."""
        future = self._watchers.get(event_id)
        if future is None:
            future = self._watchers[event_id] = asyncio.get_running_loop().create_future()
        try:
            return await asyncio.wait_for(asyncio.shield(future), max(0.0, within))
        except TimeoutError:
            return None
        finally:
            if self._watchers.get(event_id) is future and not future.done():
                future.cancel()
            self._watchers.pop(event_id, None)

    def _tell(self, event_id: int, intents: Sequence[Intent]) -> None:
        future = self._watchers.pop(event_id, None)
        if future is not None and not future.done():
            future.set_result(tuple(intents))

    async def join(self) -> None:
        """Wait until every queued event has been handled."""
        await self._idle.wait()

    @property
    def pending(self) -> int:
        return self._queued

    def oldest_age(self) -> float:
        """Seconds since the oldest event not yet handled was received (0 when none waits)."""
        received = [q.received for q in self._active.values()] + [q[0].received for q in self._queues.values()]
        return max(0.0, (self.rt.clock.now() - min(received)).total_seconds()) if received else 0.0

    def _put(self, item: _Queued) -> None:
        queue = self._queues.get(item.key)
        if queue is None:
            queue = self._queues[item.key] = collections.deque()
            if item.key not in self._active:
                self._ready.append(item.key)
        queue.append(item)
        self._queued += 1
        self._unfinished += 1
        self._idle.clear()
        self._wakeup.set()

    def _take(self) -> list[_Queued]:
        """The next event of up to ``batch_size`` senders, none of whose events is being handled now."""
        batch: list[_Queued] = []
        while self._ready and len(batch) < self._batch_size:
            key = self._ready.popleft()
            queue = self._queues[key]
            item = queue.popleft()
            if not queue:
                del self._queues[key]
            self._active[key] = item
            batch.append(item)
        self._queued -= len(batch)
        return batch

    def _finish(self, batch: Sequence[_Queued]) -> None:
        for item in batch:
            del self._active[item.key]
            if item.key in self._queues:
                self._ready.append(item.key)
        self._unfinished -= len(batch)
        if self._unfinished == 0:
            self._idle.set()
        if self._ready:
            self._wakeup.set()

    async def _work(self, index: int) -> None:
        while not self._stopping:
            batch = self._take()
            if not batch:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            self._busy[index] = True
            try:
                await self.fetch_media(batch)
                # Handling waits while callbacks are being acknowledged (bounded, see bot.infra.ackfirst).
                async with self.rt.ack_first.background():
                    await self.process_batch(batch)
            except Exception:
                log.exception("inbound events %s crashed the worker", [q.event_id for q in batch])
                self.rt.metrics.errors.labels("pipeline").inc()
            finally:
                self._busy[index] = False
                self._finish(batch)

    async def fetch_media(self, batch: Sequence[_Queued]) -> None:
        """Download the received media of the batch into the attachment store, before handling and outside any
        transaction (``bot.media_intake``). Not a background unit of ``ack_first``: it waits on the network, not on
        the event loop, and must not be charged to the acknowledgements' budget."""
        media = [q.event_id for q in batch if q.kind == "media" and media_intake.fetching(self.rt, q.channel)]
        if not media:
            return
        try:
            await media_intake.intake(self.rt, media, self.media_sleep)
        except Exception:
            # The events are handled anyway, with the platform's media ids (docs/attachments.md).
            log.exception("downloading the media of inbound events %s failed", media)
            self.rt.metrics.errors.labels("attachment_fetch").inc()

    async def process_batch(self, batch: Sequence[_Queued]) -> None:
        """Handle stored events of different senders in one transaction (group commit). When any of them fails,
        the transaction is rolled back whole and each event is handled alone, so one poisoned event costs the
        others a retry, never their work."""
        if len(batch) > 1:
            started = time.perf_counter()
            try:
                names = await self._handle_many([q.event_id for q in batch])
            except Exception:
                log.info("a batch of %s inbound events failed; handling them one at a time", len(batch))
            else:
                share = (time.perf_counter() - started) / len(batch)
                for item, name in zip(batch, names, strict=True):
                    self._handled(item, name, share)
                self.rt.outbox.wake()
                return
        for item in batch:
            await self.process(item)

    async def process(self, item: _Queued) -> None:
        """Handle one stored event exactly once (a second call for a handled event does nothing)."""
        started = time.perf_counter()
        try:
            try:
                handler = await self._handle(item.event_id)
            except Refused as refused:
                # Rolled back whole (a batch is retried event by event first); only the refusal is written now.
                handler = await self._refuse(item.event_id, refused)
                self._tell(item.event_id, [refused.reply])
        except Exception as exc:
            log.exception("handling inbound event %s failed", item.event_id)
            self.rt.metrics.errors.labels("handler").inc()
            await self._mark_failed(item.event_id, exc)
            self._tell(item.event_id, [])
            handler = "failed"
        self._handled(item, handler, time.perf_counter() - started)
        self.rt.outbox.wake()

    def _handled(self, item: _Queued, handler: str, seconds: float) -> None:
        metrics = self.rt.metrics
        metrics.handler_latency.labels(handler).observe(seconds)
        if handler != "skipped":
            waited = (self.rt.clock.now() - item.received).total_seconds()
            metrics.pipeline_lag.labels("handled").observe(max(0.0, waited))

    async def _handle_many(self, event_ids: Sequence[int]) -> list[str]:
        """Handle the events in one transaction, in the given order; the handler name of each.

        The pipeline's own bookkeeping costs a fixed number of statements per batch, not per event: one SELECT of
        the inbound rows, one of the senders' users per channel, one of their conversations; then one executemany
        each for the conversations that changed, the outbox rows and the events marked done. Only the handlers'
        domain work goes through the ORM session."""
        rt = self.rt
        now = rt.clock.now()
        async with rt.db.transaction() as s:
            conn = await s.connection()
            found = {row.id: row for row in await conn.execute(self._select_stmt, {"ids": list(event_ids)})}
            rows = [found.get(event_id) for event_id in event_ids]
            events = {
                row.id: _event_adapter.validate_python(row.payload)
                for row in rows
                if row is not None and row.status == "pending"
            }
            users = await self._users(s, events.values())
            registered = {
                event_id: user
                for event_id, event in events.items()
                if (user := users.get((event.channel, event.sender))) is not None and user.active
            }
            convs = await conversation.load_many(
                conn, {(events[i].channel, user.id) for i, user in registered.items()}, now, lock=not rt.db.is_sqlite
            )
            names: list[str] = []
            done: list[dict[str, Any]] = []
            outgoing: list[dict[str, Any]] = []
            produced: dict[int, list[Intent]] = {}
            grants: list[dict[str, Any]] = []
            for row in rows:
                if row is None or row.id not in events:
                    names.append("skipped")
                    continue
                event = events[row.id]
                user = registered.get(row.id)
                if user is None:
                    log.warning("%s sender %s is not in the directory", event.channel, event.sender)
                    names.append("unregistered")
                    done.append({"b_id": row.id, "error": "sender not in directory", "handled_at": now})
                    continue
                conv = convs[(event.channel, user.id)]
                ctx = Context(event=event, user=user, session=s, conversation=conv, runtime=rt, now=now)
                route = await rt.dispatcher.dispatch(ctx)
                names.append(route.name if route else "unrouted")
                if row.id in self._watchers:
                    produced[row.id] = ctx.intents
                outgoing += outbox.row_values(ctx.intents, now)
                grants += outbound.grant_values(ctx.intents, now)
                done.append({"b_id": row.id, "error": None, "handled_at": now})
            ttl = timedelta(minutes=rt.settings.conversation.expiry_minutes)
            await conversation.save_many(conn, list(convs.values()), now, ttl)
            if outgoing:
                await conn.execute(self._outbox_stmt, outgoing)
            if grants:
                await conn.execute(insert_plain(Base.metadata.tables[AttachmentGrant.__tablename__]), grants)
            if done:
                await conn.execute(self._done_stmt, done)
        # Committed: whoever waits for these events' outcome (``handled``) may now answer with it.
        for event_id, intents in produced.items():
            self._tell(event_id, intents)
        return names

    async def _users(self, s: AsyncSession, events: Iterable[InboundEvent]) -> dict[tuple[str, str], User]:
        """(channel, sender) → user for the events' senders: one query per channel."""
        senders: dict[str, set[str]] = {}
        for event in events:
            senders.setdefault(event.channel, set()).add(event.sender)
        found: dict[tuple[str, str], User] = {}
        for channel, ids in senders.items():
            for sender, user in (await self.rt.directory.users_by_channel_ids(s, channel, ids)).items():
                found[(channel, sender)] = user
        return found

    async def _handle(self, event_id: int) -> str:
        return (await self._handle_many([event_id]))[0]

    async def _refuse(self, event_id: int, refused: Refused) -> str:
        """A handler refused (``DomainError``) and its transaction was rolled back: mark the event done and write
        the reply and the denial's audit row, nothing else (the conversation stays as it was)."""
        rt = self.rt
        now = rt.clock.now()
        async with rt.db.transaction() as s:
            row = await s.get(InboundRow, event_id, with_for_update=not rt.db.is_sqlite)
            if row is None or row.status != "pending":
                return "skipped"
            row.status = "done"
            row.attempts += 1
            row.handled_at = now
            if (d := refused.denial) is not None:
                trail = audit.Trail(d.entity)
                trail(s, d.entity_id, d.action, d.changes, at=now, actor_id=refused.actor_id, channel=row.channel)
            outbox.enqueue(s, [refused.reply], now)
        return refused.route

    async def _mark_failed(self, event_id: int, exc: Exception) -> None:
        """Record the failure and tell the sender; the event is not retried automatically (it may be poison)."""
        rt = self.rt
        now = rt.clock.now()
        try:
            async with rt.db.transaction() as s:
                row = await s.get(InboundRow, event_id)
                if row is None:
                    return
                row.status = "failed"
                row.attempts += 1
                row.error = repr(exc)[:2000]
                row.handled_at = now
                user = await rt.directory.user_by_channel_id(s, row.channel, row.sender)
                if user is not None:
                    text = i18n.t(user.locale, "internal_error")
                    outbox.enqueue(s, [SendText(channel=row.channel, user_ids=(user.id,), text=text)], now)
        except Exception:
            log.exception("could not record the failure of inbound event %s", event_id)
