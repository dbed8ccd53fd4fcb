"""Visit records: drafts, validation, submission, location evidence, corrections. No platform code here."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from rapidfuzz import fuzz, process
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import VisitsConfig
from bot.core.directory import Directory
from bot.core.errors import DomainError, Msg
from bot.infra import audit
from bot.infra.i18n import fmt_when
from bot.parsing.visit_parser import ParsedVisit, VisitNotes, parse_visit_line
from bot.services import signatures
from storage.limits import max_length
from storage.models import Customer, Location, User, Visit
from storage.vocab import IMPORTED


class VisitError(DomainError):
    """A refusal by the visit rules (a ``DomainError``)."""


@dataclass(kw_only=True)
class VisitDraft(VisitNotes):
    """What the rep has told us so far; JSON-safe so it lives in the conversation state."""

    customer_id: int | None = None
    customer_name: str | None = None
    visited_at: str | None = None  # ISO 8601 with offset

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VisitDraft:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def has(self, name: str) -> bool:
        if name == "customer":
            return self.customer_id is not None
        value = getattr(self, name)
        return bool(value)

    @property
    def when(self) -> datetime | None:
        return datetime.fromisoformat(self.visited_at) if self.visited_at else None


def visit_no(visit_id: int) -> str:
    return f"V{visit_id}"


_VISIT_NO = re.compile(r"^[Vv]?(\d{1,12})$")


def parse_visit_no(text: str) -> int | None:
    m = _VISIT_NO.match(text.strip())
    return int(m.group(1)) if m else None


def missing_fields(draft: VisitDraft, required: list[str]) -> list[str]:
    """Required fields not yet given, in the configured order (the visit time defaults to now)."""
    return [f for f in required if f != "visited_at" and not draft.has(f)]


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres."""
    r = 6_371_000.0
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))


def distance_to(customer: Customer, latitude: float, longitude: float) -> float | None:
    """How far a location is from the customer, in metres to 0.1 m: the one figure stored on the visit and shown on
    its card and in every reply; None when the customer has no coordinates on file."""
    if customer.latitude is None or customer.longitude is None:
        return None
    return round(haversine_m(latitude, longitude, customer.latitude, customer.longitude), 1)


def check_time(when: datetime, now: datetime, cfg: VisitsConfig, tz: ZoneInfo) -> None:
    """Refuse visit times in the future or older than the backdate limit (in whole local days)."""
    if when > now + timedelta(minutes=cfg.future_tolerance_minutes):
        raise VisitError("visit.future", when=fmt_when(when, tz))
    oldest: date = now.astimezone(tz).date() - timedelta(days=cfg.backdate_days)
    if when.astimezone(tz).date() < oldest:
        raise VisitError("visit.too_old", when=fmt_when(when, tz), days=cfg.backdate_days)


def submission_deadline(visited_at: datetime, cutoff_day: int, tz: ZoneInfo) -> datetime | None:
    """The first instant at which visits dated in ``visited_at``'s month (org time zone) are closed: the start of
    day ``cutoff_day + 1`` of the next month, local time (so the end of day ``cutoff_day`` is still open); None
    when the window is off (``cutoff_day`` 0)."""
    if cutoff_day <= 0:
        return None
    local = visited_at.astimezone(tz)
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    return datetime(year, month, cutoff_day, tzinfo=tz) + timedelta(days=1)


def check_window(
    visited_at: datetime, now: datetime, cfg: VisitsConfig, tz: ZoneInfo, *, visit: Visit | None = None
) -> None:
    """Refuse a visit dated in a month whose submission window has closed (``[visits] submission_cutoff_day``):
    a new one (补录: an admin imports it), or a correction of ``visit`` (an admin's 解锁 reopens it)."""
    closes = submission_deadline(visited_at, cfg.submission_cutoff_day, tz)
    if closes is None or now < closes:
        return
    month, cutoff = visited_at.astimezone(tz).month, (closes - timedelta(days=1)).strftime("%m-%d")
    if visit is None:
        raise VisitError("visit.window_closed", month=month, cutoff=cutoff)
    raise VisitError("visit.window_closed_edit", month=month, cutoff=cutoff, no=visit_no(visit.id))


def match_ward(customer: Customer, text: str) -> str | None:
    """The customer's ward the text means (exact, contained, or a close typo); any text if none are on file."""
    wards: list[str] = list(customer.wards or [])
    text = text.strip()
    if not wards:
        return text or None
    if text in wards:
        return text
    contained = [w for w in wards if text and (text in w or w in text)]
    if len(contained) == 1:
        return contained[0]
    best = process.extractOne(text, wards, scorer=fuzz.ratio, score_cutoff=75)
    return best[0] if best else None


def contacts_for(customer: Customer, ward: str | None) -> list[str]:
    """Known contact names at the customer (in the ward first)."""
    people: list[dict[str, str]] = list(customer.contacts or [])
    in_ward = [p["name"] for p in people if ward and p.get("ward") == ward]
    others = [p["name"] for p in people if p["name"] not in in_ward]
    return in_ward + others


def contacts_elsewhere(before: Customer, after: Customer, contacts: list[str]) -> list[str]:
    """The contacts that are people of ``before`` (on file there) and not of ``after``: wrong once the hospital
    changed from one to the other."""
    there = {p["name"] for p in before.contacts or []}
    here = {p["name"] for p in after.contacts or []}
    return [c for c in contacts if c in there and c not in here]


# Draft fields stored in bounded columns: a longer value is refused with the limit (PostgreSQL would refuse it).
_DRAFT_LIMITS = {
    name: limit
    for name in ("ward", "topics", "objection", "objection_note", "commitments", "next_step", "attitude")
    if (limit := max_length(Visit, name)) is not None
}


def overlong_fields(draft: VisitDraft) -> list[tuple[str, int]]:
    """(field, limit) for every draft value longer than its column allows."""
    return [(name, n) for name, n in _DRAFT_LIMITS.items() if len(getattr(draft, name) or "") > n]


def apply_parsed(draft: VisitDraft, parsed: ParsedVisit) -> list[str]:
    """Copy every field the parser found onto the draft (customer excepted: it needs resolving); return names."""
    changed = []
    for name in ("ward", "topics", "objection", "commitments", "next_step", "attitude"):
        value = getattr(parsed, name)
        if value:
            setattr(draft, name, value)
            changed.append(name)
    if parsed.objection:
        # A new objection brings its own note (or none): the old note was about the old objection.
        draft.objection_note = parsed.objection_note
        changed.append("objection_note")
    for name in ("contacts", "products"):
        value = getattr(parsed, name)
        if value:
            setattr(draft, name, list(value))
            changed.append(name)
    if parsed.visited_at is not None:
        draft.visited_at = parsed.visited_at.isoformat()
        changed.append("visited_at")
    return changed


# Built once: this runs on every visit message, and building it cost more than running it.
_NEAR = select(Location).where(
    Location.user_id == bindparam("user_id"),
    Location.visit_id.is_(None),
    Location.shared_at >= bindparam("earliest"),
    Location.shared_at <= bindparam("latest"),
)


async def find_location(session: AsyncSession, user_id: str, when: datetime, window: timedelta) -> Location | None:
    """The unattached location the user shared closest to ``when`` inside the window."""
    rows = await session.scalars(_NEAR, {"user_id": user_id, "earliest": when - window, "latest": when + window})
    candidates = list(rows)
    return min(candidates, key=lambda loc: abs(loc.shared_at - when)) if candidates else None


def attach(visit: Visit, loc: Location, customer: Customer) -> None:
    """Copy the location onto the visit and store its distance to the customer."""
    visit.latitude, visit.longitude, visit.location_at = loc.latitude, loc.longitude, loc.shared_at
    visit.location_status = "ok"
    visit.distance_m = distance_to(customer, loc.latitude, loc.longitude)
    loc.visit_id = visit.id


# The audit rows about visits: created, located, corrected, unlocked.
audit_visit = audit.Trail("visit")


def snapshot(visit: Visit) -> dict[str, Any]:
    """The audited fields of a visit, JSON-safe."""
    return {
        "customer_id": visit.customer_id,
        "ward": visit.ward,
        "contacts": list(visit.contacts or []),
        "topics": visit.topics,
        "products": list(visit.products or []),
        "objection": visit.objection,
        "objection_note": visit.objection_note,
        "commitments": visit.commitments,
        "next_step": visit.next_step,
        "attitude": visit.attitude,
        "visited_at": visit.visited_at.isoformat(),
        "location_status": visit.location_status,
        "distance_m": visit.distance_m,
    }


async def submit(
    session: AsyncSession,
    draft: VisitDraft,
    rep: User,
    *,
    now: datetime,
    cfg: VisitsConfig,
    tz: ZoneInfo,
    channel: str,
    dictated: bool = False,
) -> tuple[Visit, Customer]:
    """Validate and store the visit (locked), attach a location shared in the window, audit it (``dictated``: some
    of it came from a voice message's speech recognition, recorded in the audit row)."""
    if draft.customer_id is None:
        raise VisitError("visit.ask.customer")
    customer = await session.get(Customer, draft.customer_id)
    if customer is None:
        raise VisitError("visit.unknown_customer", text=draft.customer_name or "", suggest="")
    when = draft.when or now
    check_time(when, now, cfg, tz)
    check_window(when, now, cfg, tz)
    window = timedelta(minutes=cfg.location_window_minutes)
    loc = await find_location(session, rep.id, when, window)
    if loc is None and cfg.no_location_policy == "reject":
        raise VisitError("visit.need_location")
    visit = Visit(
        rep_id=rep.id,
        customer_id=customer.id,
        ward=draft.ward,
        contacts=list(draft.contacts),
        topics=draft.topics,
        products=list(draft.products),
        objection=draft.objection,
        objection_note=draft.objection_note if draft.objection else None,
        commitments=draft.commitments,
        next_step=draft.next_step,
        attitude=draft.attitude,
        visited_at=when,
        location_status="missing",
        locked=True,
        source_channel=channel,
        created_at=now,
        updated_at=now,
    )
    session.add(visit)
    await session.flush()
    if loc is not None:
        attach(visit, loc, customer)
    changes = snapshot(visit) | ({"dictated": True} if dictated else {})
    audit_visit(session, visit.id, "visit.create", changes, at=now, actor_id=rep.id, channel=channel)
    return visit, customer


async def attach_to_recent(
    session: AsyncSession, loc: Location, *, cfg: VisitsConfig, now: datetime, channel: str
) -> tuple[Visit, Customer] | None:
    """Attach a just-shared location to the user's visit without one whose time is inside the window."""
    window = timedelta(minutes=cfg.location_window_minutes)
    rows = await session.scalars(
        select(Visit).where(
            Visit.rep_id == loc.user_id,
            Visit.location_status == "missing",
            Visit.visited_at >= loc.shared_at - window,
            Visit.visited_at <= loc.shared_at + window,
        )
    )
    visits = list(rows)
    if not visits:
        return None
    visit = min(visits, key=lambda v: abs(v.visited_at - loc.shared_at))
    customer = await session.get(Customer, visit.customer_id)
    assert customer is not None
    attach(visit, loc, customer)
    visit.updated_at = now
    audit_visit(
        session,
        visit.id,
        "visit.location",
        {"location_status": ["missing", "ok"], "distance_m": [None, visit.distance_m]},
        at=now,
        actor_id=loc.user_id,
        channel=channel,
    )
    return visit, customer


async def record_location(
    session: AsyncSession, user: User, channel: str, latitude: float, longitude: float, label: str, now: datetime
) -> Location:
    """Store a shared location (flushed: it has its id), not yet attached to any visit."""
    loc = Location(
        user_id=user.id,
        channel=channel,
        latitude=latitude,
        longitude=longitude,
        label=label[:200],
        shared_at=now,
    )
    session.add(loc)
    await session.flush()
    return loc


async def load_visit(session: AsyncSession, visit_id: int, no_text: str) -> Visit:
    """The visit, locked for the rest of the transaction (``FOR UPDATE`` on PostgreSQL); refused when there is none."""
    visit = await session.get(Visit, visit_id, with_for_update=True)
    if visit is None:
        raise VisitError("visit.not_found", no=no_text)
    return visit


def is_unlocked(visit: Visit, now: datetime) -> bool:
    """An admin's 解锁 is in force: it reopens the visit past both the correction window and the month's cut-off."""
    return visit.unlocked_until is not None and now <= visit.unlocked_until


def may_correct(visit: Visit, user: User, now: datetime, cfg: VisitsConfig, tz: ZoneInfo) -> None:
    """Raise unless ``user`` may still correct ``visit`` (own visit, not imported, inside the correction window and
    the month's submission window, or unlocked by an admin)."""
    if visit.rep_id != user.id:
        raise VisitError("visit.not_yours", no=visit_no(visit.id))
    if visit.source_channel == IMPORTED:  # history from a file: corrected by re-importing it (docs/imports.md)
        raise VisitError("visit.imported_locked", no=visit_no(visit.id))
    if is_unlocked(visit, now):
        return
    open_until = visit.created_at + timedelta(hours=cfg.correction_window_hours)
    if now > open_until:
        raise VisitError("visit.locked", no=visit_no(visit.id), hours=cfg.correction_window_hours)
    check_window(visit.visited_at, now, cfg, tz, visit=visit)


async def correct(
    session: AsyncSession,
    visit: Visit,
    changes: dict[str, Any],
    user: User,
    *,
    now: datetime,
    channel: str,
) -> dict[str, Any]:
    """Apply validated field changes to a visit; audit the diff. Returns the diff (empty when nothing changed)."""
    before = snapshot(visit)
    for name, value in changes.items():
        setattr(visit, name, value)
    if "customer_id" in changes and visit.latitude is not None and visit.longitude is not None:
        # The location evidence stays; its distance is now to the new customer.
        customer = await session.get(Customer, visit.customer_id)
        visit.distance_m = distance_to(customer, visit.latitude, visit.longitude) if customer is not None else None
    after = snapshot(visit)
    delta = audit.diff(before, after)
    if delta:
        visit.updated_at = now
        audit_visit(session, visit.id, "visit.correct", delta, at=now, actor_id=user.id, channel=channel)
    return delta


async def corrections(
    session: AsyncSession,
    directory: Directory,
    visit: Visit,
    text: str,
    *,
    now: datetime,
    cfg: VisitsConfig,
    tz: ZoneInfo,
) -> dict[str, Any]:
    """Validated column changes from `字段:值` pairs; raises VisitError on the first problem. A new hospital must
    know the ward and the contacts (on file, or given with it: ``check_new_hospital``); the time obeys the same
    limits as on submit."""
    parsed = parse_visit_line(text, now.astimezone(tz), cfg.objections)
    for issue in parsed.issues:
        if issue.code == "bad_objection":
            raise VisitError("visit.bad_objection", value=issue.value, choices="、".join(cfg.objections))
        if issue.code in ("bad_time", "unknown_key", "empty_value"):
            raise VisitError(f"visit.{issue.code}", value=issue.value)
    draft = VisitDraft()
    present = apply_parsed(draft, parsed)
    changes: dict[str, Any] = {name: getattr(draft, name) for name in present if name != "visited_at"}
    customer = await session.get(Customer, visit.customer_id)
    if parsed.customer:
        match = (await directory.matcher(session)).match(parsed.customer)
        if match.best is None:
            names = "、".join(c.entry.name for c in match.candidates)
            suggest = Msg("visit.suggest", {"names": names}) if names else ""
            raise VisitError("visit.unknown_customer", text=parsed.customer, suggest=suggest)
        changes["customer_id"] = match.best.id
        new = await session.get(Customer, match.best.id)
        if new is not None and customer is not None and new.id != customer.id:
            check_new_hospital(visit, customer, new, changes, parsed.customer)
        customer = new
    if "ward" in changes and customer is not None:
        ward = match_ward(customer, changes["ward"])
        if ward is None:
            raise VisitError(
                "visit.unknown_ward",
                customer=customer.name,
                ward=changes["ward"],
                wards="、".join(customer.wards or []),
            )
        changes["ward"] = ward
    if parsed.visited_at is not None:
        check_time(parsed.visited_at, now, cfg, tz)
        if not is_unlocked(visit, now):
            check_window(parsed.visited_at, now, cfg, tz, visit=visit)
        changes["visited_at"] = parsed.visited_at
    probe = VisitDraft(**{k: v for k, v in changes.items() if k in VisitDraft.__dataclass_fields__})
    for name, limit in overlong_fields(probe):
        raise VisitError("field_too_long", field=Msg(f"field.{name}"), max=limit)
    if not changes:
        raise VisitError("visit.correct_usage")
    return changes


def check_new_hospital(visit: Visit, before: Customer, after: Customer, changes: dict[str, Any], typed: str) -> None:
    """``修改 V1 医院:浙二``: the fields that depend on the hospital must fit the new one. The ward on file (when no
    ward is given) must be one of its wards, and the contacts (on file, or given) must not be people of the old
    hospital that the new one does not know; else the change is refused, saying what to change with it. The ward
    on file moves along (under its name at the new hospital)."""
    ward_given = "ward" in changes
    ward_ok = ward_given or not visit.ward or match_ward(after, visit.ward) is not None
    if not ward_given and visit.ward and ward_ok:
        changes["ward"] = match_ward(after, visit.ward)
    contacts = changes.get("contacts", list(visit.contacts or []))
    gone = contacts_elsewhere(before, after, contacts)
    if ward_ok and not gone:
        return
    wards = list(after.wards or [])
    example_ward = wards[0] if wards else ""
    known = contacts_for(after, changes.get("ward") or example_ward)
    params: dict[str, Any] = {
        "no": visit_no(visit.id),
        "hospital": typed,
        "customer": after.name,
        "old": before.name,
        "ward": visit.ward or "",
        "wards": "、".join(wards),
        "contacts": "、".join(gone),
        "example_ward": example_ward,
        "example_contact": known[0] if known else Msg("visit.example_name"),
    }
    if not ward_ok and gone:
        raise VisitError("visit.hospital_ward_contacts_not_at", **params)
    raise VisitError("visit.hospital_ward_not_at" if not ward_ok else "visit.hospital_contacts_not_at", **params)


@dataclass(frozen=True)
class Correction:
    """What ``修改 V12 …`` changed (``delta``: audited columns, empty when nothing did) and the visit's hospital now;
    ``far``: a location now far from the visit's hospital, to point out."""

    visit: Visit
    delta: dict[str, Any]
    customer: Customer | None
    far: bool


async def correct_from_text(
    session: AsyncSession,
    directory: Directory,
    actor: User,
    args: str,
    *,
    now: datetime,
    cfg: VisitsConfig,
    tz: ZoneInfo,
    channel: str,
) -> Correction:
    """`修改 V12 下一步:送资料`: the rep's own visit, inside the correction window (or unlocked), audited."""
    no_text, _, rest = args.partition(" ")
    visit_id = parse_visit_no(no_text)
    if visit_id is None or not rest.strip():
        raise VisitError("visit.correct_usage")
    visit = await load_visit(session, visit_id, no_text)
    may_correct(visit, actor, now, cfg, tz)
    changes = await corrections(session, directory, visit, rest, now=now, cfg=cfg, tz=tz)
    delta = await correct(session, visit, changes, actor, now=now, channel=channel)
    customer = await session.get(Customer, visit.customer_id)
    far = "distance_m" in delta and (visit.distance_m or 0) > cfg.far_warning_meters
    return Correction(visit, delta, customer, far)


async def unlock(
    session: AsyncSession, visit: Visit, admin: User, *, now: datetime, cfg: VisitsConfig, channel: str
) -> signatures.Signed:
    """Let the rep correct the visit again for one correction window (past the month's cut-off too); refused for an
    imported visit, which no unlock makes editable in chat (docs/imports.md). The unlock is signed (解锁)."""
    if visit.source_channel == IMPORTED:
        raise VisitError("visit.imported_no_unlock", no=visit_no(visit.id))
    until = now + timedelta(hours=cfg.correction_window_hours)
    visit.unlocked_until = until
    visit.updated_at = now
    audit_visit(
        session,
        visit.id,
        "visit.unlock",
        {"unlocked_until": until.isoformat(), "signature": signatures.sign(signatures.UNLOCK, admin, now)},
        at=now,
        actor_id=admin.id,
        channel=channel,
    )
    return signatures.Signed(signatures.UNLOCK, admin.name, now)


def today_and_week(now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The start of today and of this week (Monday), local time in ``tz``."""
    today = now.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    return today, today - timedelta(days=today.weekday())


Listed = list[tuple[Visit, str]]


def split_week(rows: Listed, today: datetime) -> tuple[Listed, Listed]:
    """This week's visits (newest first) as (today's, earlier this week's): each heading counts what it lists."""
    return [r for r in rows if r[0].visited_at >= today], [r for r in rows if r[0].visited_at < today]


async def list_for(session: AsyncSession, rep_id: str, since: datetime) -> list[tuple[Visit, str]]:
    """The rep's visits since ``since`` with their customer names, newest first."""
    rows = await session.execute(
        select(Visit, Customer.name)
        .join(Customer, Customer.id == Visit.customer_id)
        .where(Visit.rep_id == rep_id, Visit.visited_at >= since)
        .order_by(Visit.visited_at.desc())
    )
    return [(v, name) for v, name in rows.all()]
