"""``salesbot dingtalk setup`` against the FakeDingTalk (served from a thread: the CLI runs its own event loop)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from aiohttp import web
from click.testing import CliRunner, Result

from bot.cli import main
from tests.fakes.dingtalk import FakeDingTalk

pytestmark = pytest.mark.usefixtures("clean_env", "keep_logging")

APP_KEY = "dingsetupkey01"
SECRET = "setup-test-dingtalk-secret-0123456789abcdef"
API_SECRET = "setup-test-card-api-secret-0123456789abcdef"
ROBOT = "dingsetuprobot01"


@pytest.fixture
def served() -> Iterator[tuple[FakeDingTalk, str]]:
    fake = FakeDingTalk(app_key=APP_KEY, app_secret=SECRET, robot_code=ROBOT)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(fake.app())
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.run_until_complete(runner.cleanup())
        loop.close()


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, ["dingtalk", "setup", *args], env=env, catch_exceptions=False)


def env_for(url: str, **extra: str) -> dict[str, str]:
    env = {
        "SALESBOT__DINGTALK__ENABLED": "true",
        "SALESBOT__DINGTALK__APP_KEY": APP_KEY,
        "SALESBOT__DINGTALK__APP_SECRET": SECRET,
        "SALESBOT__DINGTALK__ROBOT_CODE": ROBOT,
        "SALESBOT__DINGTALK__API_BASE_URL": url,
        "SALESBOT__DINGTALK__PUBLIC_BASE_URL": "https://bot.example.com",
    }
    return env | {f"SALESBOT__DINGTALK__{k.upper()}": v for k, v in extra.items()}


def test_setup_registers_the_card_callback_and_prints_the_steps(served: tuple[FakeDingTalk, str]) -> None:
    fake, url = served
    env = env_for(url, card_template_id="tpl-1", card_callback_route_key="salesbot", card_api_secret=API_SECRET)
    result = run(env)
    assert result.exit_code == 0, result.output
    assert fake.callbacks == {
        "salesbot": {"callbackUrl": "https://bot.example.com/dingtalk/card", "apiSecret": API_SECRET}
    }
    assert "卡片回调已注册" in result.output and "权限管理" in result.output
    assert SECRET not in result.output and API_SECRET not in result.output
    assert fake.violations == []


def test_setup_without_a_template_explains_the_import(served: tuple[FakeDingTalk, str]) -> None:
    fake, url = served
    result = run(env_for(url))
    assert result.exit_code == 0, result.output
    assert fake.callbacks == {}
    assert "cards/dingtalk_template.json" in result.output and "card_template_id" in result.output


def test_setup_fails_on_a_wrong_secret(served: tuple[FakeDingTalk, str]) -> None:
    _, url = served
    result = run(env_for(url, app_secret="a-wrong-secret-that-is-long-enough-0123"))
    assert result.exit_code == 1
    assert "invalidClientIdOrSecret" in result.output


def test_setup_refuses_an_incomplete_section() -> None:
    result = CliRunner().invoke(main, ["dingtalk", "setup"], env={}, catch_exceptions=False)
    assert result.exit_code == 1
    assert "enabled" in result.output


def test_a_test_card_proves_the_template_or_says_what_is_wrong(served: tuple[FakeDingTalk, str]) -> None:
    """There is no API to read a template: --test-card sends one card through it, and DingTalk's refusal of an
    unknown template becomes a sentence for the admin (exit 1)."""
    fake, url = served
    keys = {"card_callback_route_key": "salesbot", "card_api_secret": API_SECRET}
    fake.templates.add("tpl-ok")
    good = run(env_for(url, card_template_id="tpl-ok", **keys), "--test-card", "staff-admin")
    assert good.exit_code == 0, good.output
    assert "模板 tpl-ok 可用" in good.output
    [instance] = fake.cards_to("staff-admin")
    assert instance.param_map["title"] == "salesbot 卡片模板检查"
    bad = run(env_for(url, card_template_id="tpl-missing", **keys), "--test-card", "staff-admin")
    assert bad.exit_code == 1
    assert "钉钉找不到模板 tpl-missing" in bad.output
    assert len(fake.cards_to("staff-admin")) == 1
