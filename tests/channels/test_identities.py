"""People's channel ids live in user_identities: the directory's lookups read it (the console: users.id), users come
with their identities at a fixed cost per statement, and a channel addresses recipients by them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, select

from bot import channels, outbox
from bot.core.intents import SendText
from bot.infra.clock import FixedClock
from bot.runtime import Runtime
from storage.models import User, UserIdentity
from tests.channels.fake_plugin import FakeChannel, FakePlugin
from tests.conftest import T0, make_settings


@contextmanager
def statements(rt: Runtime) -> Iterator[list[str]]:
    """The SQL statements ``rt``'s engine runs meanwhile (an executemany counts once)."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        seen.append(sql)

    event.listen(rt.db.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(rt.db.engine.sync_engine, "before_cursor_execute", record)


@pytest.fixture
async def rt(db_url: str, clock: FixedClock) -> AsyncIterator[Runtime]:
    rt = Runtime(make_settings(db_url), clock=clock, plugins=(FakePlugin(), *channels.available()))
    try:
        yield rt
    finally:
        await rt.close()


async def _give(rt: Runtime, channel: str, ids: dict[str, str | None]) -> None:
    async with rt.db.transaction() as s:
        for user in await s.scalars(select(User).where(User.id.in_(list(ids)))):
            user.set_channel_id(channel, ids[user.id], T0)


async def test_lookups_by_channel_id_read_user_identities(rt: Runtime) -> None:
    await _give(rt, "wecom", {"rep01": "wx-rep01"})
    async with rt.db.read() as s:
        found = await rt.directory.users_by_channel_ids(s, "wecom", ["wx-rep01", "rep01", "rep02", "nobody"])
        # The demo org's WeCom ids are the user ids; rep01's is now another one.
        assert {k: u.id for k, u in found.items()} == {"wx-rep01": "rep01", "rep02": "rep02"}
        assert found["wx-rep01"].channel_id("wecom") == "wx-rep01"
        console = await rt.directory.users_by_channel_ids(s, "console", ["rep01", "wx-rep01"])
        assert {k: u.id for k, u in console.items()} == {"rep01": "rep01"}
        assert await rt.directory.user_by_channel_id(s, "fake", "rep01") is None
    assert await rt.directory.is_registered(rt.db, "wecom", "wx-rep01")
    assert not await rt.directory.is_registered(rt.db, "wecom", "rep01")


async def test_an_identity_moves_and_goes_with_the_row(rt: Runtime) -> None:
    await _give(rt, "fake", {"rep01": "f-1"})
    await _give(rt, "fake", {"rep01": "f-2"})
    async with rt.db.read() as s:
        rows = (await s.execute(select(UserIdentity.external_id).where(UserIdentity.channel == "fake"))).all()
        assert [r.external_id for r in rows] == ["f-2"]  # updated in place, not a second row
        assert await rt.directory.user_by_channel_id(s, "fake", "f-1") is None
    await _give(rt, "fake", {"rep01": None})
    async with rt.db.read() as s:
        assert await rt.directory.user_by_channel_id(s, "fake", "f-2") is None


async def test_a_batch_of_senders_costs_the_same_as_one(rt: Runtime) -> None:
    async with rt.db.read() as s:
        senders = [u.id for u in await s.scalars(select(User))]
    assert len(senders) > 5
    async with rt.db.read() as s:
        with statements(rt) as one:
            await rt.directory.users_by_channel_ids(s, "wecom", senders[:1])
        with statements(rt) as many:
            found = await rt.directory.users_by_channel_ids(s, "wecom", senders)
    assert len(one) == len(many) == 1  # the users with all their identities joined in
    assert len(found) == len(senders)


async def test_the_outbox_round_loads_every_recipients_ids_in_one_query(rt: Runtime) -> None:
    async with rt.db.read() as s:
        people = [u.id for u in await s.scalars(select(User).order_by(User.id))]
    await _give(rt, "fake", {uid: f"f-{uid}" for uid in people})
    async with rt.db.transaction() as s:
        intents = [SendText(channel="fake", user_ids=(uid,), text="hi") for uid in people]
        outbox.enqueue(s, intents, rt.clock.now())
    with statements(rt) as seen:
        assert await rt.outbox.run_once() == len(people)
    assert sum("user_identities" in sql for sql in seen) == 1
    fake = rt.channels["fake"]
    assert isinstance(fake, FakeChannel)
    assert sorted(to for _, to, _ in fake.delivered) == sorted((f"f-{uid}",) for uid in people)
