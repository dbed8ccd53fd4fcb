"""Escalation in plain words: the sentences of ``升级记录`` (one per audit action about a task card), what the next
step is, and ``升级策略`` in hours and people. Pure: rows, people and settings in, text out (no database, no clock).

Every ``storage.vocab.CardEvent`` has its sentence in ``SENTENCES``; ``tests/test_escalation_words.py`` fails for
an action the code can write without one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any, Protocol

from bot.config import EscalationLevelConfig, Settings
from bot.infra import i18n
from bot.services.escalation import FALLBACK_TARGETS, FIRST_RESPONSE, PolicyView, Upcoming
from storage.models import User
from storage.vocab import CardEvent, Role


class AuditRow(Protocol):
    """What a sentence needs of an ``audit_log`` row."""

    at: datetime
    action: str
    actor_id: str | None
    changes: dict[str, Any]


@dataclass(frozen=True)
class Person:
    """Someone a sentence names: the name, and the role it names them by (``head``, ``director``, ``admin`` or
    empty for everyone else)."""

    name: str
    role: str = ""


def person_of(user: User, department: str) -> Person:
    """How a sentence about a card of ``department`` names ``user``: the head of that department, a director, an
    admin by their role; everyone else by name only."""
    roles = set(user.roles or [])
    if Role.HEAD in roles and user.department == department:
        return Person(user.name, Role.HEAD)
    for role in (Role.DIRECTOR, Role.ADMIN):
        if role in roles:
            return Person(user.name, role)
    return Person(user.name)


@dataclass(frozen=True)
class Words:
    """The reader's language and time zone, and the people the rows name (user id → ``Person``)."""

    locale: str
    tz: tzinfo
    people: Mapping[str, Person]

    def t(self, key: str, **params: Any) -> str:
        return i18n.t(self.locale, key, **params)

    def name(self, user_id: str | None) -> str:
        """A person by name; the bot's own steps (no actor) are 系统."""
        if not user_id:
            return self.t("escw.system")
        person = self.people.get(user_id)
        return person.name if person is not None else user_id

    def named(self, user_id: str) -> str:
        """A person by name and, for heads, directors and admins, their role: 周涛（部门负责人）."""
        person = self.people.get(user_id)
        if person is None:
            return user_id
        if not person.role:
            return person.name
        return self.t("escw.person_role", name=person.name, role=self.t(f"escw.role.{person.role}"))

    def join(self, items: Iterable[str]) -> str:
        """A list as the reader's language writes it: 周涛、赵强 / 周涛, 赵强."""
        return ("、" if i18n.normalize_locale(self.locale) == i18n.ZH else ", ").join(items)

    def targets(self, user_ids: Iterable[str]) -> str:
        return self.join(self.named(uid) for uid in user_ids) or self.t("escw.nobody")

    def when(self, instant: datetime) -> str:
        return i18n.fmt_when(instant, self.tz)


# ---- 升级记录: one sentence per audit action ----------------------------------------------------------------------


def _trigger(row: AuditRow) -> str:
    return str(row.changes.get("trigger") or "")


def _remind(w: Words, row: AuditRow) -> str:
    trigger = _trigger(row)
    key = f"escw.remind_{trigger}" if trigger in ("not_claimed", "not_done") else "escw.remind"
    return w.t(key, targets=w.targets(row.changes.get("targets") or []))


def _level(w: Words, row: AuditRow, kind: str) -> str:
    # Rows written before the trigger was recorded: a level on a card nobody had claimed was about the claim.
    trigger = _trigger(row) or ("not_claimed" if not row.changes.get("holder") else "not_done")
    targets = w.targets(row.changes.get("targets") or [])
    return w.t(f"escw.{kind}_{trigger}", targets=targets, level=row.changes.get("level") or 1)


def _done(w: Words, row: AuditRow) -> str:
    files = int(row.changes.get("attachments") or 0)
    who = w.name(row.actor_id)
    return w.t("escw.done_files", who=who, count=files) if files else w.t("escw.done", who=who)


def _attach(w: Words, row: AuditRow) -> str:
    kind = str(row.changes.get("kind") or "file")
    noun = w.t(f"media.{kind}") if f"media.{kind}" in i18n.CATALOG else w.t("media.file")
    return w.t("escw.attach", who=w.name(row.actor_id), kind=noun)


def _holders(row: AuditRow) -> tuple[str, str]:
    """(previous holder, new holder) of a take-over or reassignment."""
    holder = row.changes.get("holder")
    if isinstance(holder, list) and len(holder) == 2:
        return str(holder[0] or ""), str(holder[1] or "")
    return "", str(holder or "")


def _takeover(w: Words, row: AuditRow) -> str:
    previous, _ = _holders(row)
    who = w.name(row.actor_id)
    if previous and previous != row.actor_id:
        return w.t("escw.takeover_from", who=who, previous=w.name(previous))
    return w.t("escw.takeover", who=who)


def _snooze(w: Words, row: AuditRow) -> str:
    until = row.changes.get("until")
    when = w.when(datetime.fromisoformat(until)) if until else ""
    return w.t("escw.snooze", who=w.name(row.actor_id), until=when, reason=row.changes.get("reason") or "")


def _create(w: Words, row: AuditRow) -> str:
    old = row.changes.get("supersedes")
    if old:
        return w.t("escw.create_resubmit", who=w.name(row.actor_id), old=f"T{old}")
    return w.t("escw.create", who=w.name(row.actor_id))


def _resubmitted(w: Words, row: AuditRow) -> str:
    return w.t("escw.resubmitted", who=w.name(row.actor_id), new=f"T{row.changes.get('as') or ''}")


def _said(key: str, **fields: str) -> Callable[[Words, AuditRow], str]:
    """A sentence naming the actor (``who``) and some of the row's changes (parameter → changes key)."""

    def sentence(w: Words, row: AuditRow) -> str:
        values = {param: str(row.changes.get(name) or "") for param, name in fields.items()}
        return w.t(key, who=w.name(row.actor_id), **values)

    return sentence


SENTENCES: dict[CardEvent, Callable[[Words, AuditRow], str]] = {
    CardEvent.CREATE: _create,
    CardEvent.CLAIM: _said("escw.claim"),
    CardEvent.DONE: _done,
    CardEvent.REJECT: _said("escw.reject", reason="reason"),
    CardEvent.NEED_INFO: _said("escw.need_info", question="question"),
    CardEvent.ANSWER: _said("escw.answer", answer="answer"),
    CardEvent.ATTACH: _attach,
    CardEvent.DENIED: _said("escw.denied"),
    CardEvent.RESUBMITTED: _resubmitted,
    CardEvent.REMIND: _remind,
    CardEvent.LEVEL: lambda w, row: _level(w, row, "level"),
    CardEvent.REPEAT: lambda w, row: _level(w, row, "repeat"),
    CardEvent.TAKEOVER: _takeover,
    CardEvent.REASSIGN: lambda w, row: w.t("escw.reassign", who=w.name(row.actor_id), holder=w.name(_holders(row)[1])),
    CardEvent.SNOOZE: _snooze,
    CardEvent.ESCALATION_DENIED: _said("escw.escalation_denied"),
}


def sentence(w: Words, row: AuditRow) -> str:
    """What happened, as people say it: "王磊 提交申请", "第1级升级：超时未认领，已通知 周涛（部门负责人）"."""
    try:
        say = SENTENCES[CardEvent(row.action)]
    except ValueError:
        return w.t("escw.other", who=w.name(row.actor_id))
    return say(w, row)


def history_line(w: Words, row: AuditRow) -> str:
    """One line of 升级记录: when, then what happened."""
    return f"{w.when(row.at)} {sentence(w, row)}"


def user_ids(rows: Iterable[AuditRow]) -> set[str]:
    """Everyone the rows name (actors, notified people, holders), to look up once."""
    ids: set[str] = set()
    for row in rows:
        ids.add(row.actor_id or "")
        ids.update(str(t) for t in row.changes.get("targets") or [])
        ids.update(_holders(row))
    return ids - {""}


def next_step(w: Words, step: Upcoming, targets: Iterable[str], holder_id: str | None) -> str:
    """What the sweep does next ("提醒部门成员（首次响应 11-23 12:00 到期）", "第2级升级：若仍未完成，通知 赵强").
    ``targets``: whom it tells; ``holder_id``: who holds the card (a reminder goes to them, else to the
    department)."""
    ids = list(targets)
    condition = w.t(f"escw.cond.{step.trigger}") if step.trigger in ("not_claimed", "not_done") else ""
    if step.kind == "remind":
        deadline = {"deadline_name": w.t(f"escw.deadline.{step.deadline_kind}"), "deadline": w.when(step.deadline)}
        if holder_id and ids == [holder_id]:
            text = w.t("escw.next_remind_holder", targets=w.targets(ids), **deadline)
        else:
            text = w.t("escw.next_remind_department", **deadline)
    elif step.kind == "repeat":
        text = w.t("escw.next_repeat", condition=condition, targets=w.targets(ids))
    else:
        text = w.t("escw.next_level", level=step.level, condition=condition, targets=w.targets(ids))
    return text + (w.t("escw.next_snoozed") if step.snoozed else "")


# ---- 升级策略: the policy in hours and people -------------------------------------------------------------------


def fmt_hours(hours: float, locale: str) -> str:
    """Policy hours as people say them: "2 小时", "1.5 小时", "30 分钟"."""
    if hours < 1:
        return i18n.t(locale, "escw.minutes", minutes=round(hours * 60))
    return i18n.t(locale, "escw.hours", hours=f"{hours:g}")


def _department_name(settings: Settings, key: str, locale: str) -> str:
    cfg = settings.departments.get(key)
    if cfg is None:
        return key
    return cfg.name_en if i18n.normalize_locale(locale) == i18n.EN else cfg.name_zh


def _target(w: Words, view: PolicyView, name: str) -> str:
    """A level's target as people say it: 部门负责人（周涛）, 总监（赵强）, 处理人, 申请代表, a person by name."""
    people = view.people.get(name, [])
    names = w.join(u.name for u in people)
    if name in ("holder", "requester", "department"):
        label = w.t(f"escw.target.{name}")
        return label if name != "department" or not people else w.t("escw.target.people", label=label, names=names)
    if name.startswith("user:"):
        return names or name[5:]
    role = "director" if name == "director" else name.removeprefix("role:")
    label = w.t(f"escw.role.{role}") if f"escw.role.{role}" in i18n.CATALOG else role
    return w.t("escw.target.people", label=label, names=names or w.t("escw.none_yet"))


def _when(w: Words, level: EscalationLevelConfig, view: PolicyView) -> str:
    if level.after_sla is None:
        return w.t("escw.when.created", hours=fmt_hours(level.after_hours, w.locale))
    deadline = w.t(f"escw.deadline.{level.after_sla}")
    if level.after_hours:
        text = w.t("escw.when.sla_plus", deadline=deadline, hours=fmt_hours(level.after_hours, w.locale))
    else:
        text = w.t("escw.when.sla", deadline=deadline)
    sla = view.first_response_hours if level.after_sla == FIRST_RESPONSE else view.complete_hours
    if sla is not None:
        text += w.t("escw.when.total", hours=fmt_hours(sla + level.after_hours, w.locale))
    return text


def _level_line(w: Words, n: int, level: EscalationLevelConfig, view: PolicyView) -> str:
    targets = w.join(_target(w, view, name) for name in level.notify)
    reachable = any(view.people.get(name) for name in level.notify) or {"holder", "requester"} & set(level.notify)
    if not reachable:
        fallback = w.join(_target(w, view, name) for name in FALLBACK_TARGETS)
        targets += w.t("escw.policy_fallback", targets=fallback)
    repeat = ""
    if level.repeat_every_hours:
        repeat = w.t("escw.repeat_every", hours=fmt_hours(level.repeat_every_hours, w.locale))
    condition = w.t(f"escw.cond.{level.trigger}")
    return w.t(
        "escw.policy_level", level=n, when=_when(w, level, view), condition=condition, targets=targets, repeat=repeat
    )


def policy_lines(w: Words, settings: Settings, view: PolicyView) -> list[str]:
    """One policy: its title with the SLA hours, the reminder, then each level with when it fires and whom it tells
    (by name, as the directory stands now)."""
    department = _department_name(settings, view.department, w.locale)
    rt = settings.request_types.get(view.type_key)
    if rt is not None and view.first_response_hours is not None and view.complete_hours is not None:
        type_name = rt.name_en if i18n.normalize_locale(w.locale) == i18n.EN else rt.name_zh
        title = w.t(
            "escw.policy_title",
            type=type_name,
            department=department,
            first=fmt_hours(view.first_response_hours, w.locale),
            complete=fmt_hours(view.complete_hours, w.locale),
            hours=w.t("escw.hours.calendar" if view.calendar_hours else "escw.hours.working"),
        )
    elif view.department:
        title = w.t("escw.policy_title_department", department=department)
    else:
        title = w.t("escw.policy_title_default")
    if view.remind_at > 0:
        remind = w.t("escw.policy_remind", percent=f"{view.remind_at * 100:g}")
    else:
        remind = w.t("escw.policy_no_remind")
    levels = [_level_line(w, n, level, view) for n, level in enumerate(view.levels, start=1)]
    return [title, remind, *levels]
