"""The shared vocabulary, defined once (issue 10 §5): task card states, request statuses, roles.

``StrEnum``s whose values are the strings the database keeps (``task_cards.state``, ``support_requests.status``,
``users.roles``): a member equals its string, so rows read back as plain strings compare equal, and nothing stored
changes. No imports: storage, services, handlers and cards all use it.
"""

from __future__ import annotations

from enum import StrEnum


class TaskState(StrEnum):
    """A department's task card: open → claimed → done | rejected; need_info pauses (and returns to open or
    claimed, ``task_cards.resume_state``)."""

    OPEN = "open"
    CLAIMED = "claimed"
    NEED_INFO = "need_info"
    DONE = "done"
    REJECTED = "rejected"


# States a card never leaves.
TASK_CLOSED = frozenset({TaskState.DONE, TaskState.REJECTED})


class RequestStatus(StrEnum):
    """A support request, from its cards: open while any card is, done when all are done, else rejected."""

    OPEN = "open"
    DONE = "done"
    REJECTED = "rejected"


class Role(StrEnum):
    REP = "rep"
    MANAGER = "manager"
    DIRECTOR = "director"
    MEMBER = "member"
    HEAD = "head"
    ADMIN = "admin"


# Roles that only make sense inside a department (they act on its cards).
DEPARTMENT_ROLES = frozenset({Role.MEMBER, Role.HEAD})
# Roles that may act on any department's card.
SUPERVISORS = frozenset({Role.DIRECTOR, Role.ADMIN})


class CardEvent(StrEnum):
    """Every audit action written about a task card (``audit_log.action`` of entity ``task_card``): the card's
    transitions, the escalation sweep's steps, and the refusals. ``升级记录`` has a sentence for each
    (``bot.services.escalation_words``; a test fails for a member without one)."""

    CREATE = "task.create"
    CLAIM = "task.claim"
    DONE = "task.done"
    REJECT = "task.reject"
    NEED_INFO = "task.need_info"
    ANSWER = "task.answer"
    ATTACH = "task.attach"
    DENIED = "task.denied"
    RESUBMITTED = "task.resubmitted"
    REMIND = "escalation.remind"
    LEVEL = "escalation.level"
    REPEAT = "escalation.repeat"
    TAKEOVER = "escalation.takeover"
    REASSIGN = "escalation.reassign"
    SNOOZE = "escalation.snooze"
    ESCALATION_DENIED = "escalation.denied"


# The audit entity of task cards.
CARD_ENTITY = "task_card"


class PlanPeriod(StrEnum):
    """A plan item is for one day, or for a week (done by a visit any day of it; ``day`` is its Monday)."""

    DAY = "day"
    WEEK = "week"


class PlanStatus(StrEnum):
    """Stored states of a plan item; whether it is done is derived from visits (``bot.services.plan_rule``)."""

    OPEN = "open"
    CANCELLED = "cancelled"


# The source of the rows a file import wrote (``visits.source_channel``, ``plan_items.source``), never a channel's name:
# an imported visit is history from a spreadsheet, corrected by re-importing the file, not in chat (docs/imports.md).
IMPORTED = "import"
