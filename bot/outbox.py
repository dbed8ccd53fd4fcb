"""Transactional outbox: intents are rows written with the domain change; a worker delivers them.

Delivery is at-least-once with idempotent sinks: a row is claimed with a lease (compare-and-set on its status, or
``FOR UPDATE SKIP LOCKED`` on PostgreSQL) in the worker's name (``claimed_by``, see ``bot.infra.leases``), delivered,
then marked sent. While a round is delivering, a heartbeat renews its leases every third of ``lease_seconds``, so a long
send keeps its rows. A worker that dies mid-delivery leaves its rows ``sending``: the next process to start on the
same host releases them at once when it can prove their owner dead (``reclaim_dead_owners``), any other worker takes
them once the lease has run out. A message is never lost; it can be resent at most once per crash, flagged as a
possible duplicate when its call may have reached the platform. A worker that lost a lease (another took the row)
neither starts a call for the row nor records its outcome.

Cost per round (issue 9): the claim is one SELECT of the due rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; rows
held back behind an earlier row of their person that is not due, e.g. deferred by a throttle, are left out there, so
that a long backlog of one person cannot fill the batch and starve everybody else's rows), one of
the recipients' undelivered rows (order), one UPDATE of the claimed ids, one SELECT of the users and one of their
channel identities (``User.identities``, loaded with them: what a channel needs to address them); outcomes are
group-committed with one executemany per column set. Whether a lease is still ours is known in memory while the
lease we last wrote has more than a safety margin to run (nobody may take the row before it ends; the margin covers
clock skew between replicas and the time to the commit); only past that margin is it read from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import ColumnElement, Select, Update, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.channels.base import Delivery, DeliveryDeferred, DeliveryError, OutboxItem, RoundAware
from bot.core.outbound import enqueue, row_values  # noqa: F401  (re-exported: bot.outbox.enqueue)
from bot.infra import audit
from bot.infra.batching import GroupCommitter
from bot.infra.leases import LinuxProcesses, Owner, ProcessTable, current_owner, provably_dead
from storage.models import Base, OutboxMessage, User

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)


COALESCE_SECONDS = 0.002
# A lease is known to be ours in memory only while more than this share of ``lease_seconds`` is left of it.
LEASE_MARGIN = 1 / 3


def backoff(attempts: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter: uniform(0, min(cap, base * 2**(attempts-1)))."""
    return rng.uniform(0, min(cap, base * 2 ** max(0, attempts - 1)))


@functools.cache
def _due_rows(batch_size: int, lock: bool) -> Select[Any]:
    """The claim's SELECT of due rows (bound parameter ``now``), built once: its construction costs more Python than
    its execution on a quiet outbox, and the worker claims after every wake-up.

    Rows held back behind an earlier row of the same person that is not due (pending for later, or sending under a
    live lease: no overtaking) are left out here, or they would fill the batch and starve everybody else's
    (``_in_order`` still checks the rest). The held-back rows' first id per person is one grouped scan of the rows
    that are not due (``ix_outbox_due``), joined once: linear in them, not a lookup per due row."""
    m, held = OutboxMessage, aliased(OutboxMessage)
    now = bindparam("now", type_=OutboxMessage.__table__.c.next_attempt_at.type)
    blockers = (
        select(held.recipient, func.min(held.id).label("first_id"))
        .where(
            or_(
                (held.status == "pending") & (held.next_attempt_at > now),
                (held.status == "sending") & (held.claimed_until > now),
            )
        )
        .group_by(held.recipient)
        .subquery("held_back")
    )
    due = (
        select(
            m.id,
            m.recipient,
            m.channel,
            m.kind,
            m.payload,
            m.card_ref,
            m.attempts,
            m.calls_started,
            m.maybe_delivered,
            m.created_at,
        )
        .outerjoin(blockers, blockers.c.recipient == m.recipient)
        .where(
            or_(
                (m.status == "pending") & (m.next_attempt_at <= now),
                (m.status == "sending") & (m.claimed_until <= now),
            ),
            or_(blockers.c.first_id.is_(None), m.id < blockers.c.first_id),
        )
        .order_by(m.id)
        .limit(batch_size)
    )
    return due.with_for_update(skip_locked=True, of=m) if lock else due


class OutboxWorker:
    """Claims due rows, hands them to their channel, records the outcome."""

    def __init__(self, runtime: Runtime, rng: random.Random | None = None) -> None:
        self.rt = runtime
        self.cfg = runtime.settings.outbox
        self._wake = asyncio.Event()
        self._rng = rng or random.Random()
        self._task: asyncio.Task[None] | None = None
        self._busy = asyncio.Lock()
        self._stopping = False
        # One group commit for both writes of a delivery: "a call starts" (awaited before the call) and its outcome
        # (not awaited by the chain; the round waits for all of them), so a wave of concurrent deliveries shares
        # one transaction for its outcomes and the next wave's call marks.
        self._book: GroupCommitter[_Outcome | _CallStart, bool] = GroupCommitter(self._write_book)
        # Lease holder identity and the boundaries the lease code touches (tests replace them).
        self.processes: ProcessTable = LinuxProcesses()
        self.owner: Owner = current_owner(self.processes)
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        # Row id → the lease end this worker last wrote for it (claim or heartbeat).
        self._leases: dict[int, datetime] = {}

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="outbox-worker")

    async def stop(self, grace: float = 10.0) -> None:
        """Let the round in progress finish (up to ``grace`` seconds); unfinished rows are released by the next start
        on this host, or retried by another worker after their lease."""
        if self._task:
            self._stopping = True
            self._wake.set()
            await asyncio.wait({self._task}, timeout=grace)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._book.wait_idle()

    async def _run(self) -> None:
        while not self._stopping:
            try:
                async with self.rt.ack_first.background():
                    done = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox worker iteration failed")
                self.rt.metrics.errors.labels("outbox").inc()
                done = 0
            if done or self._stopping:
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.cfg.poll_interval_seconds)
                # Let the commits racing with this wake-up land, so one claim takes them all.
                await asyncio.sleep(COALESCE_SECONDS)

    async def drain(self) -> int:
        """Deliver until nothing is due now; returns how many rows were handled."""
        total = 0
        while n := await self.run_once():
            total += n
        return total

    async def run_once(self) -> int:
        async with self._busy:
            items = await self._claim()
            await self._prepare(item for _, item in items)
            # One chain per recipient, delivered in id order; chains run in parallel.
            chains: dict[str, list[OutboxItem]] = {}
            for recipient, item in items:
                chains.setdefault(recipient, []).append(item)
            sem = asyncio.Semaphore(self.cfg.concurrency)
            beat = self._keep_leases() if items else contextlib.nullcontext()
            recorded: list[asyncio.Future[bool]] = []

            async def deliver_chain(chain: list[OutboxItem]) -> None:
                for k, item in enumerate(chain):
                    async with sem:
                        outcome = await self._deliver(item)
                    recorded.append(self._book.enqueue(outcome))
                    if outcome.result != "sent":
                        # Keep the person's order: the rest waits until this one has gone out.
                        recorded.extend(self._book.enqueue(_Outcome(rest, "released")) for rest in chain[k + 1 :])
                        return

            async with beat:
                try:
                    await asyncio.gather(*(deliver_chain(c) for c in chains.values()))
                finally:
                    # The round ends when every outcome is committed (the leases are held until then).
                    await asyncio.gather(*recorded)
            return len(items)

    async def _claim(self) -> list[tuple[str, OutboxItem]]:
        now = self.rt.clock.now()
        lease_until = now + timedelta(seconds=self.cfg.lease_seconds)
        m = OutboxMessage
        async with self.rt.db.transaction() as s:
            due = _due_rows(self.cfg.batch_size, not self.rt.db.is_sqlite)
            rows = (await s.execute(due, {"now": now})).all()
            if not rows:
                return []
            eligible = await self._in_order(s, [(r.id, r.recipient) for r in rows])
            rows = [r for r in rows if r.id in eligible]
            await s.execute(
                update(m)
                .where(m.id.in_([r.id for r in rows]))
                .values(status="sending", claimed_until=lease_until, claimed_by=str(self.owner))
                .execution_options(synchronize_session=False)
            )
            user_ids = {u for r in rows for u in r.payload.get("user_ids", [r.recipient])}
            users = {u.id: u for u in await s.scalars(select(User).where(User.id.in_(user_ids)))}
        items = []
        for r in rows:
            self._leases[r.id] = lease_until
            recipients = tuple(users[u] for u in r.payload.get("user_ids", [r.recipient]) if u in users)
            resend = bool(r.maybe_delivered) or (r.calls_started or 0) > r.attempts
            item = OutboxItem(
                r.id,
                r.channel,
                r.kind,
                r.payload,
                r.card_ref,
                r.attempts,
                recipients,
                resend,
                created_at=r.created_at,
                announce=functools.partial(self._announce, r.id),
            )
            items.append((r.recipient, item))
        return items

    async def _prepare(self, items: Iterable[OutboxItem]) -> None:
        """Let each channel read what the round needs at once (``RoundAware``); a channel that cannot reads it per
        item later."""
        by_channel: dict[str, list[OutboxItem]] = {}
        for item in items:
            by_channel.setdefault(item.channel, []).append(item)
        for name, batch in by_channel.items():
            channel = self.rt.channels.get(name)
            if isinstance(channel, RoundAware):
                try:
                    await channel.prepare(batch)
                except Exception:
                    log.exception("outbox: channel %s could not prepare the round", name)
                    self.rt.metrics.errors.labels("outbox_prepare").inc()

    async def _in_order(self, s: AsyncSession, rows: list[tuple[int, str]]) -> set[int]:
        """Of the due ``(id, recipient)`` rows, the ids that come first among their recipient's undelivered rows
        (no overtaking)."""
        undelivered = await s.execute(
            select(OutboxMessage.id, OutboxMessage.recipient)
            .where(
                OutboxMessage.recipient.in_({recipient for _, recipient in rows}),
                OutboxMessage.status.in_(("pending", "sending")),
            )
            .order_by(OutboxMessage.id)
        )
        due = {row_id for row_id, _ in rows}
        eligible: set[int] = set()
        stopped: set[str] = set()
        for row_id, recipient in undelivered.all():
            if recipient in stopped:
                continue
            if row_id in due:
                eligible.add(row_id)
            else:
                stopped.add(recipient)
        return eligible

    async def _deliver(self, item: OutboxItem) -> _Outcome:
        channel = self.rt.channels.get(item.channel)
        try:
            if channel is None:
                raise DeliveryError(f"channel {item.channel!r} is not enabled", retryable=False)
            if not item.recipients:
                raise DeliveryError("recipient no longer in the directory", retryable=False)
            result = await channel.deliver(item)
        except DeliveryDeferred as exc:
            if self._past_horizon(item, exc.retry_at):
                outcome = self._failure(item, DeliveryError(f"gave up waiting: {exc}", retryable=False))
            else:
                log.info("outbox %s deferred until %s: %s", item.id, exc.retry_at.isoformat(), exc)
                outcome = _Outcome(item, "deferred", retry_at=exc.retry_at)
        except DeliveryError as exc:
            outcome = self._failure(item, exc)
        except Exception as exc:  # a bug or an unexpected transport error: retry, but say so loudly
            log.exception("outbox delivery %s crashed", item.id)
            self.rt.metrics.errors.labels("outbox_deliver").inc()
            outcome = self._failure(item, DeliveryError(repr(exc), retryable=True, outcome_unknown=True))
        else:
            outcome = _Outcome(item, "sent", delivery=result)
        self.rt.metrics.outbox_sent.labels(item.channel, outcome.result).inc()
        if outcome.result == "sent" and item.created_at is not None:
            delay = (self.rt.clock.now() - item.created_at).total_seconds()
            self.rt.metrics.pipeline_lag.labels("delivered").observe(max(0.0, delay))
        return outcome

    def _past_horizon(self, item: OutboxItem, next_try: datetime) -> bool:
        horizon = timedelta(seconds=self.cfg.give_up_after_seconds)
        return item.created_at is not None and next_try - item.created_at > horizon

    def _failure(self, item: OutboxItem, exc: DeliveryError) -> _Outcome:
        attempts = item.attempts + 1
        now = self.rt.clock.now()
        delay = backoff(attempts, self.cfg.backoff_base_seconds, self.cfg.backoff_max_seconds, self._rng)
        delay = max(delay, exc.retry_after)
        too_late = self._past_horizon(item, now + timedelta(seconds=delay))
        dead = not exc.retryable or attempts >= self.cfg.max_attempts or too_late
        log.warning(
            "outbox %s to %s via %s failed (attempt %s, %s): %s",
            item.id,
            item.payload.get("user_ids"),
            item.channel,
            attempts,
            "giving up" if dead else f"retry in {delay:.1f}s",
            exc,
        )
        return _Outcome(
            item,
            "dead" if dead else "retry",
            error=str(exc)[:2000],
            retry_at=now + timedelta(seconds=delay),
            uncertain=exc.outcome_unknown,
        )

    async def _write_book(self, ops: Sequence[_Outcome | _CallStart]) -> list[bool]:
        """One transaction for a batch of outcomes and call marks. Per op: an outcome → True; a call mark → whether
        this worker still holds the row's lease (a row taken over by another worker is not counted and gets no
        call)."""
        outcomes = [op for op in ops if isinstance(op, _Outcome)]
        calls = [op.row_id for op in ops if isinstance(op, _CallStart)]
        counted: set[int] = set()
        recorded: dict[str, list[tuple[OutboxItem, Delivery]]] = {}
        async with self.rt.db.transaction() as s:
            if outcomes:
                recorded = await self._write_outcomes(s, outcomes)
            if calls:
                counted = set(
                    await s.scalars(
                        update(OutboxMessage)
                        .where(OutboxMessage.id.in_(calls), *self._held())
                        .values(calls_started=OutboxMessage.calls_started + 1)
                        .returning(OutboxMessage.id)
                    )
                )
        for o in outcomes:
            self._leases.pop(o.item.id, None)
        for name, sent in recorded.items():
            channel = self.rt.channels.get(name)
            if isinstance(channel, RoundAware):
                channel.committed(sent)
        return [op.row_id in counted if isinstance(op, _CallStart) else True for op in ops]

    # ---- leases: owner, heartbeat, reclaim at start ----------------------------------------------------------

    def _held(self) -> tuple[ColumnElement[bool], ...]:
        """WHERE criteria: the row is still leased to this worker."""
        return (OutboxMessage.status == "sending", OutboxMessage.claimed_by == str(self.owner))

    async def _announce(self, row_id: int) -> None:
        if not await self._book.submit(_CallStart(row_id)):
            raise DeliveryError("lease lost to another worker before the call", retryable=True)

    @contextlib.asynccontextmanager
    async def _keep_leases(self) -> AsyncIterator[None]:
        """Renew this worker's leases every third of ``lease_seconds`` while the block runs (a round delivering)."""
        done = asyncio.Event()
        beat = asyncio.create_task(self._heartbeat(done), name="outbox-heartbeat")
        try:
            yield
        finally:
            done.set()
            await beat

    async def _heartbeat(self, done: asyncio.Event) -> None:
        interval = self.cfg.lease_seconds / 3
        while True:
            nap = asyncio.ensure_future(self.sleep(interval))
            stop = asyncio.ensure_future(done.wait())
            await asyncio.wait({nap, stop}, return_when=asyncio.FIRST_COMPLETED)
            for waiter in (nap, stop):
                waiter.cancel()
            if done.is_set():
                return
            try:
                await self.renew_leases()
            except Exception:  # the next beat tries again; the lease has two more thirds to run
                log.exception("outbox lease renewal failed")
                self.rt.metrics.errors.labels("outbox_heartbeat").inc()

    async def renew_leases(self) -> int:
        """Extend every lease this worker holds to ``lease_seconds`` from now; returns how many rows."""
        until = self.rt.clock.now() + timedelta(seconds=self.cfg.lease_seconds)
        async with self.rt.db.transaction() as s:
            renewed = set(
                await s.scalars(
                    update(OutboxMessage).where(*self._held()).values(claimed_until=until).returning(OutboxMessage.id)
                )
            )
        for row_id in list(self._leases):
            if row_id in renewed:
                self._leases[row_id] = until
            else:
                del self._leases[row_id]  # taken over: only the database can say again
        return len(renewed)

    async def reclaim_dead_owners(self) -> int:
        """At start: release at once the rows leased to processes of this host that provably died
        (``bot.infra.leases``), instead of waiting their leases out. ``calls_started`` and ``maybe_delivered`` stay,
        so a row whose call may have reached the platform is resent flagged as a possible duplicate. Returns how many
        rows."""
        async with self.rt.db.read() as s:
            holders = await s.scalars(
                select(OutboxMessage.claimed_by)
                .where(OutboxMessage.status == "sending", OutboxMessage.claimed_by.is_not(None))
                .distinct()
            )
            owners = [h for h in holders if h]
        dead = [h for h in owners if (o := Owner.parse(h)) is not None and provably_dead(o, self.owner, self.processes)]
        if not dead:
            return 0
        async with self.rt.db.transaction() as s:
            released = await s.scalars(
                update(OutboxMessage)
                .where(OutboxMessage.status == "sending", OutboxMessage.claimed_by.in_(dead))
                .values(status="pending", claimed_until=None, claimed_by=None)
                .returning(OutboxMessage.id)
            )
            n = len(released.all())
        log.warning("outbox: released %s row(s) of %s dead process(es): %s", n, len(dead), ", ".join(dead))
        self.wake()
        return n

    async def _still_held(self, s: AsyncSession, outcomes: Sequence[_Outcome]) -> list[_Outcome]:
        """The outcomes of rows this worker still holds; the others' rows were taken over (lease lost) and belong
        to their new owner, whatever this late outcome says."""
        # Nobody may take a row before the lease we wrote ends: with more than the margin to run, it is still ours.
        safe = self.rt.clock.now() + timedelta(seconds=self.cfg.lease_seconds * LEASE_MARGIN)
        held = {o.item.id for o in outcomes if (until := self._leases.get(o.item.id)) is not None and until > safe}
        unsure = {o.item.id for o in outcomes} - held
        if unsure:
            query = select(OutboxMessage.id).where(OutboxMessage.id.in_(unsure), *self._held())
            if not self.rt.db.is_sqlite:
                query = query.with_for_update()
            held.update(await s.scalars(query))
        lost = [o for o in outcomes if o.item.id not in held]
        if lost:
            log.warning(
                "outbox: lease lost, outcome ignored for row(s) %s (%s)",
                ", ".join(str(o.item.id) for o in lost),
                ", ".join(o.result for o in lost),
            )
        return [o for o in outcomes if o.item.id in held]

    async def _write_outcomes(
        self, s: AsyncSession, outcomes: Sequence[_Outcome]
    ) -> dict[str, list[tuple[OutboxItem, Delivery]]]:
        """Write the outcomes; returns what each ``RoundAware`` channel recorded (told once the commit is done)."""
        now = self.rt.clock.now()
        rows: list[dict[str, object]] = []
        recorded = await self._record_sent(s, outcomes, now)
        for o in await self._still_held(s, outcomes):
            row: dict[str, object] = {"id": o.item.id, "claimed_until": None}
            if o.result == "sent":
                assert o.delivery is not None
                row.update(
                    status="sent",
                    sent_at=now,
                    attempts=o.item.attempts + 1,
                    last_error=None,
                    **o.delivery.row_values(),
                )
            elif o.result == "deferred":
                row.update(status="pending", next_attempt_at=o.retry_at)
            elif o.result == "released":
                row.update(status="pending")
            else:
                dead = o.result == "dead"
                row.update(
                    status="dead" if dead else "pending",
                    attempts=o.item.attempts + 1,
                    next_attempt_at=now if dead else o.retry_at,
                    last_error=o.error,
                    maybe_delivered=o.item.resend or o.uncertain,
                )
                if dead:
                    audit.record(
                        s,
                        at=now,
                        action="outbox.dead",
                        entity="outbox",
                        entity_id=o.item.id,
                        channel=o.item.channel,
                        changes={
                            "error": (o.error or "")[:500],
                            "attempts": o.item.attempts + 1,
                            "kind": o.item.kind,
                        },
                    )
            rows.append(row)
        # One Core UPDATE per distinct column set (executemany by primary key).
        for keys in {tuple(sorted(r)) for r in rows}:
            await s.execute(
                _update_by_id(keys), [{f"v_{k}": v for k, v in r.items()} for r in rows if tuple(sorted(r)) == keys]
            )
        return recorded

    async def _record_sent(
        self, s: AsyncSession, outcomes: Sequence[_Outcome], now: datetime
    ) -> dict[str, list[tuple[OutboxItem, Delivery]]]:
        """Channels' own bookkeeping for what reached the platform (``RoundAware.record``), in the outcome commit;
        also for a row whose lease was lost meanwhile: the message did go out."""
        by_channel: dict[str, list[tuple[OutboxItem, Delivery]]] = {}
        for o in outcomes:
            if o.result == "sent" and o.delivery is not None:
                by_channel.setdefault(o.item.channel, []).append((o.item, o.delivery))
        recorded: dict[str, list[tuple[OutboxItem, Delivery]]] = {}
        for name, sent in by_channel.items():
            channel = self.rt.channels.get(name)
            if isinstance(channel, RoundAware):
                await channel.record(s, sent, now)
                recorded[name] = sent
        return recorded


@functools.cache
def _update_by_id(keys: tuple[str, ...]) -> Update:
    """``UPDATE outbox SET <keys but id> WHERE id = :v_id`` with ``v_<key>`` parameters (built once per column set)."""
    table = Base.metadata.tables[OutboxMessage.__tablename__]
    values = {table.c[k]: bindparam(f"v_{k}", type_=table.c[k].type) for k in keys if k != "id"}
    return update(table).where(table.c.id == bindparam("v_id", type_=table.c.id.type)).values(values)


@dataclass(frozen=True)
class _CallStart:
    """A platform call for this row is about to start (committed before it does)."""

    row_id: int


@dataclass(frozen=True)
class _Outcome:
    item: OutboxItem
    result: Literal["sent", "deferred", "retry", "dead", "released"]
    delivery: Delivery | None = None
    error: str | None = None
    retry_at: datetime | None = None
    # The failed call's outcome is unknown (timeout, connection lost, 5xx): the platform may have the message.
    uncertain: bool = False


async def depth(session: AsyncSession) -> dict[str, int]:
    """Undelivered rows by status (for /metrics and /healthz)."""
    rows = await session.execute(
        select(OutboxMessage.status, func.count())
        .where(OutboxMessage.status.in_(("pending", "sending", "dead")))
        .group_by(OutboxMessage.status)
    )
    counts = {"pending": 0, "sending": 0, "dead": 0}
    counts.update({status: n for status, n in rows.all()})
    return counts
