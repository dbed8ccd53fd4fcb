"""Task cards as people see them: names resolved, the neutral card rendered, intents per channel.

Shared by the request handlers (after a tap) and the escalation sweep (notices), so that a card looks the same
whoever changed it. Nothing here sends anything: it returns intents for the outbox.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.util import identity_key

from bot.config import RequestFieldConfig, RequestTypeConfig, Settings
from bot.core.intents import Intent, SendCard, SendText, UpdateCard
from bot.infra import i18n
from bot.services import signatures
from bot.services.requests import card_no, request_no, shown_fields
from cards.model import Card
from cards.tasks import TaskView, task_card
from storage.models import Customer, SupportRequest, TaskCard, User
from storage.vocab import CARD_ENTITY, CardEvent, TaskState

# Where a notice reaches a person: ``Runtime.channel_for``, the one rule (``bot.channels.choice``).
ChannelChoice = Callable[[User], str]


def type_name(locale: str, rt: RequestTypeConfig) -> str:
    return rt.name_en if i18n.normalize_locale(locale) == i18n.EN else rt.name_zh


def field_label(locale: str, f: RequestFieldConfig) -> str:
    return f.label_en if i18n.normalize_locale(locale) == i18n.EN else f.label_zh


def department_name(settings: Settings, department: str, locale: str | None) -> str:
    cfg = settings.departments.get(department)
    if cfg is None:
        return department
    return cfg.name_en if i18n.normalize_locale(locale) == i18n.EN else cfg.name_zh


def org_locale(settings: Settings) -> str:
    return i18n.normalize_locale(settings.org.default_locale)


def field_rows(rt: RequestTypeConfig, values: dict[str, Any], customer: str, locale: str) -> list[tuple[str, str]]:
    """(label, value) for every field of the request type, the customer by name."""
    return [
        (field_label(locale, f), customer if f.key == "customer" else str(values.get(f.key) or "")) for f in rt.fields
    ]


def channel_of(channel_for: ChannelChoice, user: User, fallback: str = "") -> str:
    """Where a notice reaches ``user``: ``channel_for``, the one rule (``bot.channels.choice``).

    ``fallback`` (the event's channel, passed by older callers) is not used: a notice never falls back to the
    channel of the event that caused it."""
    return channel_for(user)


def text_to(channel_for: ChannelChoice, user: User, fallback: str, key: str, **params: Any) -> SendText:
    """A text in ``user``'s language on the channel that reaches ``user`` (``fallback``: see ``channel_of``)."""
    return SendText(
        channel=channel_of(channel_for, user, fallback), user_ids=(user.id,), text=i18n.t(user.locale, key, **params)
    )


async def names(session: AsyncSession, ids: Iterable[str]) -> dict[str, str]:
    wanted = {i for i in ids if i}
    if not wanted:
        return {}
    rows = await session.execute(select(User.id, User.name).where(User.id.in_(wanted)))
    return {uid: name for uid, name in rows.all()}


async def task_view(
    session: AsyncSession, settings: Settings, card: TaskCard, request: SupportRequest | None = None
) -> TaskView:
    """The card's facts resolved to names, in the org's default language (one copy serves every member)."""
    request = request or await session.get(SupportRequest, card.request_id)
    assert request is not None
    rt = settings.request_types.get(request.type_key)
    customer = await session.get(Customer, request.customer_id)
    locale = org_locale(settings)
    people = await names(session, {request.rep_id, card.holder_id or ""})
    questions = list(card.questions or [])
    last = questions[-1] if questions else {}
    successor = None
    if card.state == TaskState.REJECTED:
        successor = await session.scalar(select(TaskCard.id).where(TaskCard.supersedes_id == card.id))
    values = shown_fields(settings, rt, request)
    signed = None
    if card.state == TaskState.DONE:
        signed = await signatures.latest(session, CARD_ENTITY, card.id, CardEvent.DONE)
    return TaskView(
        ref=card.ref,
        no=card_no(card.id),
        request_no=request_no(request.id),
        title=card.title,
        type_name=type_name(locale, rt) if rt else request.type_key,
        department_name=department_name(settings, card.department, locale),
        state=card.state,
        rows=field_rows(rt, values, customer.name if customer else "", locale) if rt else [],
        requester=people.get(request.rep_id, request.rep_id),
        holder=people.get(card.holder_id or "", ""),
        since=card.state_since,
        due_at=card.due_at,
        require_claim=card.require_claim,
        evidence=card.evidence,
        attachments=len(card.attachments or []),
        question=str(last.get("q") or ""),
        answer=str(last.get("a") or ""),
        reject_reason=card.reject_reason or "",
        needed_at=card.needed_at,
        needed_time=request.needed_at is not None,
        lead_hours=card.lead_hours or 0.0,
        supersedes=card_no(card.supersedes_id) if card.supersedes_id is not None else "",
        resubmitted_as=card_no(successor) if successor is not None else "",
        signed_by=signed.signer_name if signed else "",
        signed_meaning=signed.meaning_in(locale) if signed else "",
        signed_at=signed.at if signed else None,
    )


async def by_channel(
    session: AsyncSession, channel_for: ChannelChoice, user_ids: list[str], fallback: str
) -> dict[str, list[str]]:
    """Recipients grouped by the channel that reaches them (``channel_of``), in the given order. People the session
    holds already (the escalation sweep loads its targets) cost no query; the others one for all of them."""
    if not user_ids:
        return {}
    held = session.sync_session.identity_map
    users = [u for uid in set(user_ids) if isinstance(u := held.get(identity_key(User, uid)), User)]
    missing = set(user_ids) - {u.id for u in users}
    if missing:
        users += (await session.scalars(select(User).where(User.id.in_(missing)))).all()
    groups: dict[str, list[str]] = defaultdict(list)
    for u in sorted(users, key=lambda u: user_ids.index(u.id)):
        groups[channel_of(channel_for, u, fallback)].append(u.id)
    return groups


async def render_task_card(
    session: AsyncSession, settings: Settings, card: TaskCard, request: SupportRequest | None = None
) -> Card:
    view = await task_view(session, settings, card, request)
    return task_card(view, org_locale(settings), settings.org.tz, card.id)


async def task_card_intents(
    session: AsyncSession,
    settings: Settings,
    channel_for: ChannelChoice,
    card: TaskCard,
    *,
    first: bool,
    fallback: str,
    request: SupportRequest | None = None,
) -> list[Intent]:
    """The card for every recipient: a shared send (``first``) or an in-place update of every copy."""
    rendered = await render_task_card(session, settings, card, request)
    intents: list[Intent] = []
    for channel, ids in (await by_channel(session, channel_for, list(card.recipients or []), fallback)).items():
        if first:
            intents.append(SendCard(channel=channel, user_ids=tuple(ids), card=rendered, shared=True))
        else:
            intents.append(UpdateCard(channel=channel, user_ids=tuple(ids), card=rendered))
    if not first:
        intents += copy_updates(card, rendered)
    return intents


# ---- copies opened from a queue (打开) ---------------------------------------------------------------------------

# Copies of one card kept up to date; an older one keeps the buttons it had (a tap on it is checked against the
# card's state like any other, and answered with the card as it is).
MAX_COPIES = 10


def copy_ref(card: TaskCard, n: int) -> str:
    """The ref of the card's ``n``-th copy: its own message on every channel (a platform may refuse a message id
    used twice), updated with the card."""
    return f"{card.ref}-o{n}"


async def task_card_copy(session: AsyncSession, settings: Settings, card: TaskCard, user_id: str, channel: str) -> Card:
    """A fresh copy of the task card for ``user_id`` on ``channel``, recorded in ``card.copies`` so that every later
    update of the card reaches it too (``task_card_intents``)."""
    copies = list(card.copies or [])
    n = int(copies[-1]["n"]) + 1 if copies else 1
    card.copies = [*copies, {"n": n, "user": user_id, "channel": channel}][-MAX_COPIES:]
    rendered = await render_task_card(session, settings, card)
    return rendered.model_copy(update={"ref": copy_ref(card, n)})


def copy_updates(card: TaskCard, rendered: Card) -> list[Intent]:
    """An update of every recorded copy of ``card`` to ``rendered``, each on the channel it was opened on."""
    return [
        UpdateCard(
            channel=str(c["channel"]),
            user_ids=(str(c["user"]),),
            card=rendered.model_copy(update={"ref": copy_ref(card, int(c["n"]))}),
        )
        for c in card.copies or []
    ]
