"""The one rule for which channel reaches a person with a notice (bot.channels.choice), used alike by
``Context.notify``, ``recipients.channel_of`` / ``by_channel`` and ``Runtime.channel_for``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from bot import channels, outbox
from bot.channels import choice
from bot.channels.base import Delivery, OutboxItem
from bot.core.conversation import ConversationState
from bot.core.events import TextMessage
from bot.core.routing import Context
from bot.infra.clock import FixedClock
from bot.runtime import Runtime
from bot.services import recipients
from storage.models import OutboxMessage, User
from tests.channels.fake_plugin import FakeChannel, FakePlugin
from tests.conftest import T0, make_settings


class _Stub:
    def __init__(self, name: str, reaches: set[str] | None) -> None:
        self.name = name
        self._reaches = reaches  # None: everyone

    def can_reach(self, user: User) -> bool:
        return self._reaches is None or user.id in self._reaches

    async def deliver(self, item: OutboxItem) -> Delivery:
        raise AssertionError("not delivered in these tests")


def _user(uid: str) -> User:
    return User(id=uid, name=uid, roles=[], created_at=T0, updated_at=T0)


def test_the_first_enabled_channel_in_preference_order_that_reaches_the_person() -> None:
    chans: dict[str, Any] = {"b": _Stub("b", {"ann"}), "a": _Stub("a", {"ann", "bob"}), "all": _Stub("all", None)}
    order = ("a", "b", "all")
    assert choice.reaching(_user("ann"), chans, order) == "a"  # preference order, not the dict's
    assert choice.reaching(_user("bob"), chans, order) == "a"
    assert choice.reaching(_user("cyd"), chans, order) == "all"  # the channel that knows everyone comes last
    assert choice.reaching(_user("cyd"), chans, ("a", "b", "gone")) is None  # "gone" is not enabled


def test_nobody_reachable_is_recorded_not_dropped(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.channels.choice"):
        assert choice.channel_for(_user("cyd"), {"a": _Stub("a", set())}, ("a",)) == choice.UNREACHABLE
    assert "no enabled channel reaches cyd" in caplog.text


@pytest.fixture
async def rt(db_url: str, clock: FixedClock, request: pytest.FixtureRequest) -> AsyncIterator[Runtime]:
    """The test plug-in first in preference order, then the real ones (console enabled unless the test says so);
    rep01 has an id on the fake channel, rep02 none."""
    sections = getattr(request, "param", {})
    rt = Runtime(make_settings(db_url, **sections), clock=clock, plugins=(FakePlugin(), *channels.available()))
    async with rt.db.transaction() as s:
        rep = await s.scalar(select(User).where(User.id == "rep01"))
        assert rep is not None
        rep.set_channel_id("fake", "f-rep01", T0)
    try:
        yield rt
    finally:
        await rt.close()


async def _notices(rt: Runtime) -> dict[str, tuple[str, str, dict[str, list[str]]]]:
    """For rep01 and rep02, as seen from an event rep01 sent on the fake channel: where ``Context.notify``,
    ``recipients.channel_of`` and ``recipients.by_channel`` send a notice."""
    async with rt.db.read() as s:
        users = {u.id: u for u in await s.scalars(select(User).where(User.id.in_(("rep01", "rep02"))))}
        event = TextMessage(channel="fake", sender="f-rep01", dedup_key="msg:1", text="x")
        ctx = Context(
            event=event,
            user=users["rep01"],
            session=s,
            conversation=ConversationState("fake", "rep01"),
            runtime=rt,
            now=T0,
        )
        seen = {}
        for uid, user in users.items():
            ctx.notify(user, "hi")
            groups = await recipients.by_channel(s, rt.channel_for, [uid], event.channel)
            seen[uid] = (
                ctx.intents[-1].channel,
                recipients.channel_of(rt.channel_for, user, event.channel),
                dict(groups),
            )
    return seen


async def test_every_notice_helper_follows_the_one_rule(rt: Runtime) -> None:
    """Regression: ``Context.notify`` fell back to the event's channel, ``recipients.channel_of`` to the console,
    so a person without an id on the event's channel got a dead notice from one and a console notice from the
    other."""
    seen = await _notices(rt)
    assert seen["rep01"] == ("fake", "fake", {"fake": ["rep01"]})
    assert seen["rep02"] == ("console", "console", {"console": ["rep02"]})
    assert rt.channel_for(await _user_in(rt, "rep02")) == "console"


async def _user_in(rt: Runtime, uid: str) -> User:
    async with rt.db.read() as s:
        user = await s.scalar(select(User).where(User.id == uid))
    assert user is not None
    return user


@pytest.mark.parametrize("rt", [{"console": {"enabled": False}}], indirect=True)
async def test_a_notice_nobody_can_deliver_is_recorded_as_undeliverable(rt: Runtime) -> None:
    seen = await _notices(rt)
    assert seen["rep01"][:2] == ("fake", "fake")
    assert seen["rep02"] == (choice.UNREACHABLE, choice.UNREACHABLE, {choice.UNREACHABLE: ["rep02"]})
    rep02 = await _user_in(rt, "rep02")
    async with rt.db.transaction() as s:
        outbox.enqueue(s, [recipients.text_to(rt.channel_for, rep02, "fake", "internal_error")], rt.clock.now())
    await rt.start()
    await rt.settle()
    async with rt.db.read() as s:
        [row] = (await s.scalars(select(OutboxMessage).where(OutboxMessage.recipient == "rep02"))).all()
    assert (row.channel, row.status) == (choice.UNREACHABLE, "dead")
    assert "not enabled" in (row.last_error or "")
    assert b'salesbot_outbox_delivered_total{channel="unreachable",result="dead"} 1.0' in rt.metrics.render()
    fake = rt.channels["fake"]
    assert isinstance(fake, FakeChannel) and fake.delivered == []
