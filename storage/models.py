"""ORM models. Every instant is stored in UTC (timezone-aware columns on PostgreSQL, naive UTC on SQLite)."""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from storage import limits
from storage.vocab import RequestStatus, TaskState

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT on PostgreSQL, INTEGER (rowid alias, autoincrement) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on every backend (SQLite keeps naive UTC text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Money(TypeDecorator[Decimal]):
    """Yuan with two decimals: NUMERIC(14, 2) on every backend, read back as a ``Decimal``. SQLite has no decimal
    type (SQLAlchemy would warn that it converts through floats), so there the driver sees floats and the value is
    rounded back to cents when read; 14 digits fit a double exactly."""

    impl = Numeric(14, 2)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(Numeric(14, 2, asdecimal=False))
        return dialect.type_descriptor(Numeric(14, 2))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return float(value) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return Decimal(str(value)).quantize(Decimal("0.01"))


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


class User(Base):
    """A person in the org directory. ``id`` is the org's own user id; channel ids map onto it."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    roles: Mapped[list[Any]] = mapped_column(default=list)
    department: Mapped[str | None] = mapped_column(String(64))
    manager_id: Mapped[str | None] = mapped_column(String(64))
    locale: Mapped[str] = mapped_column(String(8), default="zh-CN")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # Console sign-in tokens issued before this instant are void (`salesbot console revoke`).
    console_tokens_after: Mapped[datetime | None]
    # The person's ids on the channels that have their own (``user_identities``); loaded with the user (one query
    # per statement that loads users, whatever their number), so the channel-choice rule needs no I/O.
    identities: Mapped[list[UserIdentity]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", passive_deletes=True, order_by="UserIdentity.channel"
    )

    def channel_id(self, channel: str) -> str | None:
        """This person's id on ``channel``, if they have one there (``user_identities``)."""
        return next((i.external_id for i in self.identities if i.channel == channel), None)

    def set_channel_id(self, channel: str, external_id: str | None, now: datetime) -> None:
        """Give this person ``external_id`` on ``channel`` (None or empty: none there); flushed with the user."""
        current = next((i for i in self.identities if i.channel == channel), None)
        if not external_id:
            if current is not None:
                self.identities.remove(current)
        elif current is None:
            self.identities.append(UserIdentity(channel=channel, external_id=external_id, created_at=now))
        elif current.external_id != external_id:
            current.external_id = external_id


class Customer(Base):
    """A hospital (or other account) with aliases, wards and contacts."""

    __tablename__ = "customers"
    # The digest reads a team's customers by grade (its A customers).
    __table_args__ = (Index("ix_customers_rep_grade", "rep_id", "grade"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    aliases: Mapped[list[Any]] = mapped_column(default=list)
    grade: Mapped[str | None] = mapped_column(String(1))
    # The rep responsible for the customer (the customer CSV's optional ``rep`` column): the digest's A-customer
    # figures of a team are over its reps' customers.
    rep_id: Mapped[str | None] = mapped_column(String(64))
    address: Mapped[str | None] = mapped_column(String(300))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    wards: Mapped[list[Any]] = mapped_column(default=list)
    # [{"name": "张主任", "ward": "骨科", "title": "主任"}]
    contacts: Mapped[list[Any]] = mapped_column(default=list)
    # The day the current grade took effect (a confirmed 调级) and the grade in force before it: visit frequency
    # follows the grade in force at the start of a cycle (a month), so a change counts from the next cycle.
    grade_since: Mapped[date | None] = mapped_column(Date)
    previous_grade: Mapped[str | None] = mapped_column(String(1))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class InboundEvent(Base):
    """Every inbound platform event, persisted (unique per channel + dedup key) before it is acknowledged."""

    __tablename__ = "inbound_events"
    __table_args__ = (
        UniqueConstraint("channel", "dedup_key", name="uq_inbound_events_channel_dedup"),
        Index("ix_inbound_events_status", "status", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(16))
    dedup_key: Mapped[str] = mapped_column(String(200))
    sender: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]]
    # pending → done | failed
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime]
    handled_at: Mapped[datetime | None]


class Conversation(Base):
    """Multi-turn dialog state per (channel, user); survives restarts, forgotten after ``expires_at``."""

    __tablename__ = "conversations"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    flow: Mapped[str | None] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    expires_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime]


class OutboxMessage(Base):
    """An outgoing intent, written in the same transaction as the domain change that caused it."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        # Per-recipient throttling counts what was sent to a person in the last minute / hour.
        Index("ix_outbox_recipient_sent", "channel", "recipient", "sent_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]]
    card_ref: Mapped[str | None] = mapped_column(String(128), index=True)
    # pending → sending → sent | dead
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Platform calls started for this row (recorded just before each call). More calls started than attempts
    # recorded means a worker died while a call was in flight.
    calls_started: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # A failed attempt whose outcome is unknown (timeout, connection lost, 5xx): the platform may have it already.
    maybe_delivered: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    next_attempt_at: Mapped[datetime]
    claimed_until: Mapped[datetime | None]
    # Which process holds the lease ("host:pid:generation"): a restarted process reclaims its dead predecessor's
    # rows at once instead of waiting the lease out.
    claimed_by: Mapped[str | None] = mapped_column(String(96))
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    # What the platform answered (message id, WeCom response_code) so the card can be updated later.
    platform_msg_id: Mapped[str | None] = mapped_column(String(128))
    platform_response_code: Mapped[str | None] = mapped_column(String(256))


class WeComCardCode(Base):
    """A WeCom response_code able to update one template card; each works once (message/send or a tap)."""

    __tablename__ = "wecom_card_codes"
    __table_args__ = (Index("ix_wecom_card_codes_task", "task_id", "spent_at"),)

    code: Mapped[str] = mapped_column(String(256), primary_key=True)
    task_id: Mapped[str] = mapped_column(String(128))
    # "send" (returned by message/send) or "tap" (a template_card_event's ResponseCode).
    source: Mapped[str] = mapped_column(String(8))
    issued_at: Mapped[datetime]
    spent_at: Mapped[datetime | None]


class ChannelSend(Base):
    """One message that reached one person on one channel: a channel's per-person throttle counts these (a shared
    card counts for every recipient, a split text for every part). Rows older than the throttle's hour are pruned.
    Was ``wecom_sends`` (WeCom only) before migration 0005."""

    __tablename__ = "channel_sends"
    __table_args__ = (Index("ix_channel_sends_recipient_at", "channel", "recipient", "sent_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(64))
    outbox_id: Mapped[int | None] = mapped_column(BigId)
    sent_at: Mapped[datetime]


class UserIdentity(Base):
    """A person's id on one channel (WeCom userid, DingTalk staffId, …): one per person and channel, and an
    external id belongs to one person per channel. Filled from the org CSV's per-channel columns (each channel
    plug-in names its column); the only place these ids live since migration 0006."""

    __tablename__ = "user_identities"
    __table_args__ = (
        UniqueConstraint("channel", "external_id", name="uq_user_identities_channel_external_id"),
        UniqueConstraint("user_id", "channel", name="uq_user_identities_user_id_channel"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(64), ForeignKey("users.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]


class JobRun(Base):
    """One run of a scheduled job for one period (``job`` + ``period`` unique): a job runs once per period across
    restarts and replicas; the row is claimed before the work starts and marked done or failed after it."""

    __tablename__ = "job_runs"
    __table_args__ = (UniqueConstraint("job", "period", name="uq_job_runs_job_period"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job: Mapped[str] = mapped_column(String(64))
    # The period the run covers, in the job's own terms ("2026-12-02", "2026-12-02T18:00", "2026-W49").
    period: Mapped[str] = mapped_column(String(64))
    # running → done | failed
    status: Mapped[str] = mapped_column(String(10), default="running")
    # Which process runs it ("host:ns:pid:start:gen", bot.infra.leases.Owner): a run whose owner died can be taken over.
    owner: Mapped[str | None] = mapped_column(String(96))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    error: Mapped[str | None] = mapped_column(Text)


class Location(Base):
    """A location a user shared; attached to a visit when it falls inside the visit's window."""

    __tablename__ = "locations"
    __table_args__ = (Index("ix_locations_user_at", "user_id", "shared_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    label: Mapped[str] = mapped_column(String(200), default="")
    shared_at: Mapped[datetime]
    visit_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("visits.id"))


class Visit(Base):
    """A hospital visit record. Locked once submitted; corrections are audited."""

    __tablename__ = "visits"
    __table_args__ = (
        Index("ix_visits_rep_at", "rep_id", "visited_at"),
        Index("ix_visits_customer_at", "customer_id", "visited_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    rep_id: Mapped[str] = mapped_column(String(64), ForeignKey("users.id"))
    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id"))
    ward: Mapped[str | None] = mapped_column(String(100))
    contacts: Mapped[list[Any]] = mapped_column(default=list)
    topics: Mapped[str | None] = mapped_column(Text)
    products: Mapped[list[Any]] = mapped_column(default=list)
    objection: Mapped[str | None] = mapped_column(String(32))
    # What the rep said about the objection (其他: what it was); shown as 其他（…）.
    objection_note: Mapped[str | None] = mapped_column(String(200))
    commitments: Mapped[str | None] = mapped_column(Text)
    next_step: Mapped[str | None] = mapped_column(Text)
    attitude: Mapped[str | None] = mapped_column(Text)
    visited_at: Mapped[datetime]
    # The location evidence (copied from the attached Location row) and its distance to the customer.
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    distance_m: Mapped[float | None] = mapped_column(Float)
    location_at: Mapped[datetime | None]
    # ok | missing (policy flag) — the digest reports visits without location.
    location_status: Mapped[str] = mapped_column(String(10), default="missing")
    locked: Mapped[bool] = mapped_column(Boolean, default=True)
    # An admin unlock lets the rep correct it until this instant, past the normal window.
    unlocked_until: Mapped[datetime | None]
    source_channel: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class AuditLog(Base):
    """Append-only trail: who did what, when, through which channel."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_entity", "entity", "entity_id"),
        Index("ix_audit_log_seq", "seq", unique=True),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    actor_id: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str | None] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(48))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    changes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The chain (storage/audit_chain.py, docs/audit.md): set at flush time, never by the writer.
    seq: Mapped[int | None] = mapped_column(BigInteger)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    row_hash: Mapped[str | None] = mapped_column(String(64))


class AuditChainHead(Base):
    """One row (id 1): the audit chain's last seq and row hash; the lock every appender takes."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class ConsoleFeed(Base):
    """The console channel's mailbox: one row per delivered message or card update, read by the browser."""

    __tablename__ = "console_feed"
    __table_args__ = (
        Index("ix_console_feed_user", "user_id", "id"),
        # Redelivery of the same outbox row (after a crash) must not show a message twice.
        UniqueConstraint("outbox_id", "user_id", name="uq_console_feed_outbox_user"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    card_ref: Mapped[str | None] = mapped_column(String(128))
    # Rendered content: {"text": ...} or {"html": ..., "card": {...}}; "from": "bot" | "user".
    body: Mapped[dict[str, Any]]
    outbox_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime]


class SupportRequest(Base):
    """A rep's request for support (跟台, 样机, 资料, 备货 …); each receiving department gets a TaskCard."""

    __tablename__ = "support_requests"
    __table_args__ = (Index("ix_support_requests_rep_at", "rep_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    type_key: Mapped[str] = mapped_column(String(64))
    rep_id: Mapped[str] = mapped_column(String(64), ForeignKey("users.id"))
    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id"))
    ward: Mapped[str | None] = mapped_column(String(100))
    # Field key → value as entered and validated (dates as ISO yyyy-mm-dd).
    fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    visit_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("visits.id"))
    # From the current cards (a resubmitted card's successor replaces it): open (some card not closed) → done
    # (every card done) | rejected (some card rejected, none open). docs/requests.md
    status: Mapped[str] = mapped_column(String(10), default=RequestStatus.OPEN.value)
    source_channel: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # The instant the work is needed when the needed-by date came with a time of day (the surgery's start);
    # the date itself is in ``fields``.
    needed_at: Mapped[datetime | None]


class TaskCard(Base):
    """One department's task for a request: a state machine (open → claimed → done | rejected; need_info pauses).

    ``version`` is the ORM's version counter: every UPDATE is ``… WHERE id = ? AND version = ?``, so two writers
    (a tap and a sweep, two replicas) can never both change the card from the same state."""

    __tablename__ = "task_cards"
    __table_args__ = (
        Index("ix_task_cards_request", "request_id"),
        Index("ix_task_cards_dept_state", "department", "state"),
        Index("ix_task_cards_holder_state", "holder_id", "state"),
        # The escalation sweep reads only due rows: its cost follows due cards, not open ones.
        Index("ix_task_cards_next_due", "next_due_at"),
        # The queues across departments (a director's overview, 超时) read open cards only, by state.
        Index("ix_task_cards_state_due", "state", "due_at"),
        # A rejected card is resubmitted once: one successor at most.
        Index("uq_task_cards_supersedes", "supersedes_id", unique=True),
        # The digest's cards of a period are the open ones (by state) and those closed since its start.
        Index("ix_task_cards_closed_at", "closed_at"),
        # The digest's first responses of a period: without it they are found through every request of the scope.
        Index("ix_task_cards_first_response", "first_response_at"),
        # A team's cards for the digest: its open ones, and those closed since a period's start.
        Index("ix_task_cards_rep_state", "rep_id", "state"),
        Index("ix_task_cards_rep_closed", "rep_id", "closed_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(BigId, ForeignKey("support_requests.id"))
    # The requesting rep (the request's, which never changes), kept on the card for the digest's team figures.
    rep_id: Mapped[str | None] = mapped_column(String(64))
    department: Mapped[str] = mapped_column(String(64))
    # Stable across updates: the card's ref on every channel (WeCom task_id).
    ref: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(10), default=TaskState.OPEN.value)
    # The state need_info returns to once the rep has answered.
    resume_state: Mapped[str | None] = mapped_column(String(10))
    holder_id: Mapped[str | None] = mapped_column(String(64))
    require_claim: Mapped[bool] = mapped_column(Boolean, default=True)
    evidence: Mapped[str] = mapped_column(String(12), default="none")
    first_response_hours: Mapped[float] = mapped_column(Float)
    complete_hours: Mapped[float] = mapped_column(Float)
    # The SLA deadlines computed when the card was created (working or calendar hours, per request type).
    respond_by: Mapped[datetime]
    due_at: Mapped[datetime]
    # [{"kind": "image", "media_id": "...", "channel": "wecom", "by": "log01", "at": "ISO"}]
    attachments: Mapped[list[Any]] = mapped_column(default=list)
    # The open question (need_info) and the conversation so far: [{"q": ..., "by": ..., "a": ..., "at": ...}]
    questions: Mapped[list[Any]] = mapped_column(default=list)
    reject_reason: Mapped[str | None] = mapped_column(Text)
    # Who the card was sent to (user ids): every copy is updated after a transition.
    recipients: Mapped[list[Any]] = mapped_column(default=list)
    version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    # Since when the current holder / state holds (shown as "since").
    state_since: Mapped[datetime]
    # First response: open → claimed or need_info; completion: → done. Stored for the digest.
    first_response_at: Mapped[datetime | None]
    done_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
    # ---- escalation: a state machine on the row (see bot/services/escalation.py) ----
    # The policy frozen at creation: {"urgent": bool, "steps": [{"kind", "due", "trigger", "notify", "repeat"}]}.
    policy: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Index of the next step of ``policy["steps"]`` to consider; steps before it have fired or been skipped.
    esc_step: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The next instant the sweep must look at this card (None: closed, paused, or nothing left).
    next_due_at: Mapped[datetime | None]
    # The last fired level that repeats, and when it fires again.
    repeat_step: Mapped[int | None] = mapped_column(Integer)
    repeat_at: Mapped[datetime | None]
    snoozed_until: Mapped[datetime | None]
    # Escalation notices sent so far (names the notice cards) and who received them (may take over / reassign).
    notices: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    watchers: Mapped[list[Any]] = mapped_column(default=list)
    # The notice cards sent, to settle when the card closes: [{"n": 2, "targets": ["dir01"]}] (ref <card ref>-e<n>).
    # The card's own state: the audit log records it too, but nothing reads the audit log to decide (issue 10 §4).
    notice_log: Mapped[list[Any]] = mapped_column(default=list, server_default="[]")
    # Copies opened from a queue (打开): [{"n": 3, "user": "log01", "channel": "console"}] (ref <card ref>-o<n>);
    # every update of the card reaches them too (``recipients.task_card_intents``).
    copies: Mapped[list[Any]] = mapped_column(default=list, server_default="[]")
    # The rejected card of the same request and department this one was resubmitted for (``重新提交``).
    supersedes_id: Mapped[int | None] = mapped_column(BigId)
    # Set when the request's needed-by date made the deadline earlier than the SLA: the instant the work is needed
    # and the lead time (hours) kept before it; the card says so.
    needed_at: Mapped[datetime | None]
    lead_hours: Mapped[float | None] = mapped_column(Float)

    # SQLAlchemy reads this mapping once at class creation; it is never mutated.
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class ConsoleMedia(Base):
    """A file uploaded through the web console (the console's counterpart of a WeCom media id).

    ``token`` is the only id that leaves the server (URLs, media ids): random (32 URL-safe characters, set by
    default on insert), so ids cannot be counted.
    ``content_type`` is sniffed from the bytes, never taken from the client."""

    __tablename__ = "console_media"
    __table_args__ = (Index("ix_console_media_user_at", "user_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    token: Mapped[str] = mapped_column(String(64), unique=True, default=lambda: secrets.token_urlsafe(24))
    user_id: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    # The task card the file was attached to (who may read it follows from the card), if any.
    card_id: Mapped[int | None] = mapped_column(BigId, index=True)
    created_at: Mapped[datetime]


class ConsoleSession(Base):
    """A signed-in browser. The cookie holds a random secret; only its SHA-256 is stored here."""

    __tablename__ = "console_sessions"
    __table_args__ = (Index("ix_console_sessions_user", "user_id", "revoked_at"),)

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    # The absolute end; the idle end is last_seen_at + the configured idle lifetime.
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    user_agent: Mapped[str] = mapped_column(String(200), default="")


class CalendarDay(Base):
    """An official closed day (holiday) or make-up working day (调休) loaded by `salesbot calendar import`;
    it wins over the chinese-calendar package's data for its date."""

    __tablename__ = "calendar_days"
    __table_args__ = (Index("ix_calendar_days_year", "year"),)

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    year: Mapped[int] = mapped_column(Integer)
    # closed: no work (a holiday, or a weekday given off); open: a weekend day that is a working day (调休).
    kind: Mapped[str] = mapped_column(String(8))
    # The holiday it belongs to (春节, 国庆节 …).
    name: Mapped[str] = mapped_column(String(32), default="")
    source: Mapped[str] = mapped_column(String(200), default="")
    imported_at: Mapped[datetime]


# Strings that PostgreSQL would refuse (too long, NUL) fail on SQLite too, at flush (storage/limits.py).
limits.install(Base)


class PlanItem(Base):
    """A rep's planned customer for a day or a week (docs/plans.md). ``day`` is the day, or the Monday of the week
    for ``period == "week"``; ``starts_at`` / ``ends_at`` are that span (org-local days) in UTC. The item is done
    when the rep has a visit to the customer with ``starts_at <= visited_at < ends_at``: derived by that one rule
    (``bot.services.plan_rule``), never stored, so imported and corrected visits count at once."""

    __tablename__ = "plan_items"
    __table_args__ = (
        UniqueConstraint("rep_id", "customer_id", "period", "day", name="uq_plan_items_rep_customer_period_day"),
        Index("ix_plan_items_day_rep", "day", "rep_id"),
        # A scope's plan items of a period (the digest, 我的计划): without it SQLite reads every item of each rep
        # through the unique index's rep_id prefix (bench/digest.py).
        Index("ix_plan_items_rep_day", "rep_id", "day"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    rep_id: Mapped[str] = mapped_column(String(64), ForeignKey("users.id"))
    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id"))
    # day | week (storage.vocab.PlanPeriod)
    period: Mapped[str] = mapped_column(String(8))
    day: Mapped[date] = mapped_column(Date)
    purpose: Mapped[str | None] = mapped_column(String(200))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    # open | cancelled (storage.vocab.PlanStatus); "done" is derived from visits, never stored
    status: Mapped[str] = mapped_column(String(12), default="open")
    # chat (the rep) | manager | import
    source: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class DigestFollowup(Base):
    """The follow-up card a manager gets for a rep below the plan threshold on a day (once per rep and day)."""

    __tablename__ = "digest_followups"
    __table_args__ = (
        UniqueConstraint("rep_id", "day", name="uq_digest_followups_rep_day"),
        Index("ix_digest_followups_manager_status", "manager_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    rep_id: Mapped[str] = mapped_column(String(64), ForeignKey("users.id"))
    manager_id: Mapped[str] = mapped_column(String(64))
    day: Mapped[date] = mapped_column(Date)
    plan_items: Mapped[int] = mapped_column(Integer)
    plan_done: Mapped[int] = mapped_column(Integer)
    # The card's stable ref (its updates and taps find it by this).
    ref: Mapped[str] = mapped_column(String(96))
    # open | reviewed (已复盘)
    status: Mapped[str] = mapped_column(String(12), default="open")
    note: Mapped[str | None] = mapped_column(Text)
    handled_by: Mapped[str | None] = mapped_column(String(64))
    handled_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class DigestSend(Base):
    """A scheduled digest (or weekly objections card) that went out to a person on a day: written in the same
    transaction as its outbox rows, so it is sent once per person, kind and day whatever restarts and replicas do."""

    __tablename__ = "digest_sends"
    __table_args__ = (UniqueConstraint("user_id", "kind", "day", name="uq_digest_sends_user_kind_day"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(64))
    # daily | objections
    kind: Mapped[str] = mapped_column(String(16))
    day: Mapped[date] = mapped_column(Date)
    sent_at: Mapped[datetime]


class PlatformApiCall(Base):
    """API calls made to a platform in a month (DingTalk counts every call but the token's against the org's
    monthly quota): counted in memory and added here with the outbox round's outcome commit (an upsert), so it
    survives restarts up to the calls of the last round. ``warned_at``: when the admins were told the month passed
    80 % of the quota (set once, by whichever replica gets there first)."""

    __tablename__ = "platform_api_calls"
    __table_args__ = (UniqueConstraint("channel", "month", name="uq_platform_api_calls_channel_month"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(16))
    # "YYYY-MM" in the org's time zone.
    month: Mapped[str] = mapped_column(String(7))
    calls: Mapped[int] = mapped_column(Integer, default=0)
    warned_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class DingTalkActionLink(Base):
    """A used action link (the no-template fallback's signed button URL, ``bot/channels/dingtalk/actions.py``):
    written with the tap's event, so a link works once."""

    __tablename__ = "dingtalk_action_links"
    __table_args__ = (UniqueConstraint("token_hash", name="uq_dingtalk_action_links_token_hash"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # SHA-256 hex of the whole token.
    token_hash: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(64))
    card_ref: Mapped[str] = mapped_column(String(200))
    used_at: Mapped[datetime]


class Attachment(Base):
    """A file the bot holds itself (issue 13): a photo or document received on any channel or uploaded in the
    console, downloaded when it arrived, so it outlives the platform's media id. The bytes live in the attachment
    store (``bot/infra/filestore.py``: ``storage_key`` is the path relative to the store, content-addressed by
    ``sha256``); ``token`` is the only id that leaves the server (``att-<token>`` media ids, console URLs).

    ``(source_channel, source_media_id)`` is unique: a platform retry or a second download of the same media
    stores one row. Who may read it: ``owner_id``, the readers of ``card_id`` (``requests.may_see_file``), and the
    people it was sent to (``attachment_grants``)."""

    __tablename__ = "attachments"
    __table_args__ = (
        UniqueConstraint("source_channel", "source_media_id", name="uq_attachments_source"),
        Index("ix_attachments_owner_at", "owner_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    token: Mapped[str] = mapped_column(String(64), unique=True, default=lambda: secrets.token_urlsafe(24))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    # Sniffed from the bytes, never the platform's or the client's word.
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    filename: Mapped[str] = mapped_column(String(200))
    storage_key: Mapped[str] = mapped_column(String(200))
    owner_id: Mapped[str] = mapped_column(String(64))
    source_channel: Mapped[str] = mapped_column(String(32))
    source_media_id: Mapped[str | None] = mapped_column(String(256))
    card_id: Mapped[int | None] = mapped_column(BigId, index=True)
    created_at: Mapped[datetime]


class AttachmentUpload(Base):
    """An attachment uploaded to a platform (its temporary media id there), reused while it is still valid."""

    __tablename__ = "attachment_uploads"
    __table_args__ = (UniqueConstraint("attachment_id", "channel", name="uq_attachment_uploads_attachment_channel"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    attachment_id: Mapped[int] = mapped_column(BigId, ForeignKey("attachments.id"))
    channel: Mapped[str] = mapped_column(String(32))
    platform_media_id: Mapped[str] = mapped_column(String(256))
    uploaded_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class AttachmentGrant(Base):
    """Someone an attachment was sent to (written with the outbox row that sends it): they may read it on the
    console too. Not unique: sending the same file twice writes two rows, which grant the same thing."""

    __tablename__ = "attachment_grants"
    __table_args__ = (Index("ix_attachment_grants_token_user", "attachment_token", "user_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    attachment_token: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(64))
    granted_at: Mapped[datetime]


# ---- customer activity (issue 14): what the nightly health score reads -------------------------------------------
# Aggregates per customer only: never a doctor, never a prescription count (统方 is forbidden; docs/imports.md).


class CustomerPurchase(Base):
    """A customer's purchases in a month (from the ERP): ``month`` is the month's first day, ``amount`` yuan."""

    __tablename__ = "customer_purchases"
    __table_args__ = (
        UniqueConstraint("customer_id", "month", name="uq_customer_purchases_customer_month"),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id"))
    month: Mapped[date] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(Money())
    # import (storage.vocab.IMPORTED) | chat
    source: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class CustomerTrial(Base):
    """A new-product trial at a customer on a day."""

    __tablename__ = "customer_trials"
    __table_args__ = (
        UniqueConstraint("customer_id", "product", "day", name="uq_customer_trials_customer_product_day"),
        Index("ix_customer_trials_customer_day", "customer_id", "day"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id"))
    product: Mapped[str] = mapped_column(String(100))
    day: Mapped[date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class CustomerEvent(Base):
    """An academic event (沙龙, 科室会) at a customer on a day, with the number of attendees from it."""

    __tablename__ = "customer_events"
    __table_args__ = (
        UniqueConstraint("customer_id", "event", "day", name="uq_customer_events_customer_event_day"),
        Index("ix_customer_events_customer_day", "customer_id", "day"),
        CheckConstraint("attendees >= 0", name="attendees_not_negative"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id"))
    event: Mapped[str] = mapped_column(String(200))
    day: Mapped[date] = mapped_column(Date)
    attendees: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


# ---- the nightly health score, alerts, grade changes, advice (issue 14; docs/customers.md) ------------------------


class CustomerScore(Base):
    """A customer's health score on a night: the components (0–100), the raw values they came from, the suggested
    grade. One row per customer and night; older nights are thinned to one a week ([customers.score])."""

    __tablename__ = "customer_scores"
    __table_args__ = (
        UniqueConstraint("customer_id", "night", name="uq_customer_scores_customer_night"),
        Index("ix_customer_scores_night", "night"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # No foreign key, on purpose: the rows are derived, written only by the nightly INSERT … SELECT FROM customers
    # (so every customer_id is a customer's), and PostgreSQL's per-row check cost a quarter of writing 100k rows
    # (docs/benchmarks.md "Nightly customer score").
    customer_id: Mapped[int] = mapped_column(BigId)
    night: Mapped[date] = mapped_column(Date)
    score: Mapped[float] = mapped_column(Float)
    purchases: Mapped[float] = mapped_column(Float)
    trials: Mapped[float] = mapped_column(Float)
    events: Mapped[float] = mapped_column(Float)
    purchases_amount: Mapped[Decimal] = mapped_column(Money())
    trials_count: Mapped[int] = mapped_column(Integer)
    attendees: Mapped[int] = mapped_column(Integer)
    # The customer's grade that night, and the one its score suggests ([customers.grades]).
    grade: Mapped[str | None] = mapped_column(String(1))
    suggested_grade: Mapped[str | None] = mapped_column(String(1))
    computed_at: Mapped[datetime]


class CustomerAlert(Base):
    """An alert that went out: once per customer, rule and period (the rule's ``every_days``), written in the same
    transaction as its outbox rows."""

    __tablename__ = "customer_alerts"
    __table_args__ = (
        UniqueConstraint("customer_id", "rule", "period", name="uq_customer_alerts_customer_rule_period"),
        Index("ix_customer_alerts_night", "night"),
        Index("ix_customer_alerts_customer_night", "customer_id", "night"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id"))
    # The rule's name in [customers.alerts] and its kind and level when it fired.
    rule: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(20))
    level: Mapped[str] = mapped_column(String(8))
    title: Mapped[str] = mapped_column(String(40))
    # "2026-12-02/7": the first night of the period and its length in days.
    period: Mapped[str] = mapped_column(String(24))
    night: Mapped[date] = mapped_column(Date)
    # The customer's rep when it fired (scope: a rep's, a manager's team's alerts).
    rep_id: Mapped[str | None] = mapped_column(String(64))
    # What the rule saw: {"score": 82.0, "component": "trials", ...}.
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]


class GradeChange(Base):
    """A grade change: requested (调级 … 原因:…) and confirmed or rejected by the rep's manager on a card, or made
    directly by a director. Every step is audited (entity ``grade_change``) with the old and new grade."""

    __tablename__ = "grade_changes"
    __table_args__ = (
        Index("ix_grade_changes_customer_state", "customer_id", "state"),
        Index("ix_grade_changes_approver_state", "approver_id", "state"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id"))
    old_grade: Mapped[str | None] = mapped_column(String(1))
    new_grade: Mapped[str] = mapped_column(String(1))
    reason: Mapped[str] = mapped_column(String(500))
    # pending → confirmed | rejected | withdrawn; direct (a director's change, no card)
    state: Mapped[str] = mapped_column(String(12))
    requested_by: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[datetime]
    # Who confirms (the rep's manager when it was asked).
    approver_id: Mapped[str | None] = mapped_column(String(64))
    # The card's stable ref (its updates and taps find it by this).
    ref: Mapped[str | None] = mapped_column(String(96))
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None]
    decision_reason: Mapped[str | None] = mapped_column(String(500))


class CustomerAdvice(Base):
    """A manager's advice for a customer (建议 浙二 …): the newest is shown to the rep in 客户 and before a planned
    visit; earlier ones are kept."""

    __tablename__ = "customer_advice"
    __table_args__ = (Index("ix_customer_advice_customer_created", "customer_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id"))
    author_id: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime]
