"""Channels are plug-ins: the registry lists them, the runtime, the web app and the CLI iterate over the enabled
ones (a plug-in registered by a test mounts its route and receives deliveries), and the core modules never name
a platform."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner
from sqlalchemy import select

from bot import channels
from bot.app import build_app
from bot.channels.base import ChannelPlugin, CliSupport
from bot.cli import main
from bot.config import parse_settings
from bot.infra.clock import FixedClock
from bot.runtime import Runtime
from storage.models import User
from tests.channels import fake_plugin
from tests.channels.fake_plugin import FakeChannel, FakePlugin
from tests.conftest import T0, make_settings

ROOT = Path(__file__).resolve().parents[2]
CORE = ("bot/runtime.py", "bot/app.py", "bot/cli.py", "bot/core/directory.py")


def test_the_core_never_names_a_platform() -> None:
    """Platform names live in bot/channels/<name>/ and in the registry's list of modules only."""
    for path in CORE:
        text = (ROOT / path).read_text(encoding="utf-8")
        assert not re.search("wecom|dingtalk", text, re.IGNORECASE), path


def test_the_registry_lists_the_plugin_modules_in_preference_order() -> None:
    plugins = channels.available()
    assert [p.name for p in plugins] == ["wecom", "dingtalk", "console"]
    assert all(isinstance(p, ChannelPlugin) for p in plugins)
    assert channels.plugin("console") is not None and channels.plugin("console").identity_is_user_id  # type: ignore[union-attr]
    assert [(name, spec.column) for name, spec in channels.identity_columns()] == [
        ("wecom", "wecom_userid"),
        ("dingtalk", "dingtalk_staff_id"),
    ]


def test_one_more_module_is_one_more_channel() -> None:
    plugins = channels.available((*channels.PLUGIN_MODULES, "tests.channels.fake_plugin"))
    assert plugins[-1] is fake_plugin.PLUGIN
    with pytest.raises(ValueError, match="two channel plug-ins named 'fake'"):
        channels.available(("tests.channels.fake_plugin", "tests.channels.fake_plugin"))


def test_enabled_follows_each_plugins_config_section() -> None:
    url = "sqlite+aiosqlite:///unused.db"
    assert [p.name for p in channels.enabled(make_settings(url))] == ["console"]
    dingtalk = {"enabled": True, "app_key": "dingkey", "app_secret": "s" * 32, "robot_code": "dingkey"}
    settings = make_settings(url, console={"enabled": False}, dingtalk=dingtalk)
    # DingTalk alone: enabled (its delivery channel is built by a runtime).
    assert [p.name for p in channels.enabled(settings)] == ["dingtalk"]


@pytest.fixture
async def fake_rt(db_url: str, clock: FixedClock) -> AsyncIterator[Runtime]:
    """A runtime with the console and the test plug-in (first in preference order); rep01 has a fake id."""
    rt = Runtime(make_settings(db_url), clock=clock, plugins=(FakePlugin(), *channels.available()))
    async with rt.db.transaction() as s:
        rep = await s.scalar(select(User).where(User.id == "rep01"))
        assert rep is not None
        rep.set_channel_id("fake", "f-rep01", T0)
    await rt.start()
    try:
        yield rt
    finally:
        await rt.close()


@pytest.fixture
async def fake_http(fake_rt: Runtime) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(build_app(fake_rt, manage_runtime=False))) as client:
        yield client


def _fake(rt: Runtime) -> FakeChannel:
    channel = rt.channels["fake"]
    assert isinstance(channel, FakeChannel)
    return channel


async def test_a_registered_plugin_mounts_its_route_and_receives_deliveries(
    fake_rt: Runtime, fake_http: TestClient[Any, Any]
) -> None:
    assert [p.name for p in fake_rt.plugins] == ["fake", "console"]
    async with fake_http.post(fake_plugin.PATH, json={"sender": "f-rep01", "text": "帮助", "id": 1}) as resp:
        assert resp.status == 200
    await fake_rt.settle()
    [(kind, to, payload)] = _fake(fake_rt).delivered
    assert (kind, to) == ("text", ("f-rep01",))
    assert payload["user_ids"] == ["rep01"]
    # Nobody else is known on the fake channel under that id.
    async with fake_http.post(fake_plugin.PATH, json={"sender": "rep01", "text": "帮助", "id": 2}) as resp:
        assert resp.status == 403


async def test_healthz_shows_a_plugins_problem_as_degraded(fake_rt: Runtime, fake_http: TestClient[Any, Any]) -> None:
    async with fake_http.get("/healthz") as resp:
        body = await resp.json()
    assert (body["status"], sorted(body["channels"])) == ("ok", ["console", "fake"])
    _fake(fake_rt).problem = {"ok": False, "error": "secret rejected"}
    async with fake_http.get("/healthz") as resp:
        assert resp.status == 200
        body = await resp.json()
    assert (body["status"], body["fake"]) == ("degraded", {"ok": False, "error": "secret rejected"})


async def test_the_runtime_closes_its_channels(db_url: str, clock: FixedClock) -> None:
    rt = Runtime(make_settings(db_url), clock=clock, plugins=(FakePlugin(),))
    assert list(rt.channels) == ["fake"]
    channel = _fake(rt)
    await rt.close()
    assert channel.closed


def test_config_check_lists_the_enabled_plugins(
    clean_env: None, keep_logging: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[org]\ndemo = true\n[console]\nenabled = true\n", encoding="utf-8")
    monkeypatch.setattr(channels, "PLUGIN_MODULES", (*channels.PLUGIN_MODULES, "tests.channels.fake_plugin"))
    result = CliRunner().invoke(main, ["config", "check", str(path)])
    assert result.exit_code == 0, result.output
    assert "OK (channels: console, fake)" in result.output


def test_a_plugins_commands_join_the_cli() -> None:
    console = channels.plugin("console")
    assert console is not None
    support = CliSupport(config_option=lambda f: f, load=lambda path: parse_settings({}), run=lambda fn: None)
    assert [c.name for c in console.commands(support)] == ["console"]
    assert sorted(main.commands["console"].commands) == ["revoke", "token"]  # type: ignore[attr-defined]
