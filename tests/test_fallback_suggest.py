"""The fallback knows who is asking (issue 11): an unknown command gets the closest command of the sender's own roles
as a card whose button sends it, else a hint naming that role's commands; the console's chips come from the same
service. The scenarios at the end run on every channel (the ``chat`` fixture of tests/scenarios)."""

from __future__ import annotations

from typing import Any

import pytest

from bot.config import parse_settings
from bot.core.routing import CommandWord, Router, command, exact
from bot.runtime import Runtime
from bot.services import commands
from bot.services.commands import Chip
from cards import wecom
from cards.payload import unpack
from cards.suggest import SuggestedText, suggestion_card
from handlers import ROUTERS
from storage.vocab import Role
from tests.scenario_driver import last_card
from tests.scenarios import conftest as _scenarios

# The scenario fixtures (tests/scenarios/conftest.py and the WeCom and DingTalk fakes it builds on), registered here
# by name for this module's scenarios.
channel = _scenarios.channel
chat = _scenarios.chat
scenario_overrides = _scenarios.scenario_overrides
settings_overrides = _scenarios.settings_overrides
fake = _scenarios.fake
fake_server = _scenarios.fake_server
answer_loss = _scenarios.answer_loss
signer = _scenarios.signer
dingtalk_fake = _scenarios.dingtalk_fake
dingtalk_server = _scenarios.dingtalk_server
dingtalk_links = _scenarios.dingtalk_links

REQUEST_TYPES = parse_settings({}, "<test>").request_types
DECLARED = tuple(cw for router in ROUTERS for cw in router.commands())
# The department queue's words as a table of their own (handlers/queue.py declares them with more roles).
QUEUE = (
    CommandWord("我的任务", False, frozenset({Role.MEMBER.value})),
    CommandWord("待认领", False, frozenset({Role.MEMBER.value})),
    CommandWord("部门待办", False, frozenset({Role.HEAD.value})),
    CommandWord("超时", False, frozenset({Role.HEAD.value})),
)


def suggest_for(roles: list[str], text: str, extra: tuple[CommandWord, ...] = ()) -> str | None:
    return commands.suggest(text, commands.words_for(roles, DECLARED + extra, REQUEST_TYPES))


# ---- the matcher ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("拜方 浙一 骨科", "拜访 浙一 骨科"),  # a homophone from the input method
        ("拜方浙一骨科", "拜访 浙一骨科"),  # glued, as 拜访浙一 is accepted
        ("我的拜方", "我的拜访"),
        ("我的申清", "我的申请"),
        ("跟抬 浙一 骨科 后天", "跟台 浙一 骨科 后天"),  # a request type's keyword, from the config
        ("vist ZJU1 ortho", "visit ZJU1 ortho"),  # the rest as typed
        ("帮主", "帮助"),
    ],
)
def test_a_reps_typo_is_answered_with_the_command_meant(typed: str, meant: str) -> None:
    assert suggest_for([Role.REP], typed) == meant


@pytest.mark.parametrize("typed", ["今天天气不错", "拜年快乐", "跟进 一下", "进步很大", "ok", "帮主 你好", "?!"])
def test_nothing_is_suggested_when_no_command_is_close(typed: str) -> None:
    assert suggest_for([Role.REP], typed) is None


@pytest.mark.parametrize("roles", [[Role.MANAGER], [Role.MEMBER], [Role.HEAD], [Role.DIRECTOR], [Role.ADMIN]])
def test_a_non_rep_never_gets_a_reps_command(roles: list[str]) -> None:
    for typed in ("拜方 浙一 骨科", "我的拜方", "跟抬 浙一", "我的申清"):
        assert suggest_for(roles, typed, QUEUE) is None, typed


def test_department_people_get_their_own_queue_words() -> None:
    assert suggest_for([Role.MEMBER], "我的认务", QUEUE) == "我的任务"
    assert suggest_for([Role.HEAD], "超市", QUEUE) == "超时"
    assert suggest_for([Role.REP], "我的认务", QUEUE) is None  # a department's word, not a rep's
    assert suggest_for([Role.MEMBER], "部门代办", QUEUE) is None  # a head's word
    assert suggest_for([Role.REP], "超市", QUEUE) is None
    assert suggest_for([Role.ADMIN], "管理帮主") == "管理帮助"


def test_a_person_without_roles_is_treated_as_a_rep() -> None:
    assert suggest_for([], "拜方 浙一") == "拜访 浙一"


def test_routes_declare_which_roles_use_their_words() -> None:
    by_word = {cw.word: cw for cw in DECLARED}
    assert by_word["拜访"].roles == {Role.REP} and by_word["拜访"].takes_args
    assert by_word["帮助"].roles == frozenset() and not by_word["帮助"].takes_args
    assert by_word["解锁"].roles == {Role.ADMIN}
    assert by_word["管理帮助"].roles == {Role.ADMIN}
    router = Router("probe")
    router.route(command("甲", roles=(Role.HEAD,)), exact("乙"))(_noop)
    assert router.commands() == [CommandWord("甲", True, frozenset({Role.HEAD.value})), CommandWord("乙", False)]
    assert router.command_words() == {"甲", "乙"}


async def _noop(ctx: Any) -> None:
    return None


# ---- chips ------------------------------------------------------------------------------------------------------


def chip_texts(roles: list[str], locale: str = "zh-CN") -> list[str]:
    return [c.text for c in commands.chips(roles, locale, REQUEST_TYPES)]


def test_each_role_gets_its_chips_and_help_last() -> None:
    assert chip_texts([Role.REP]) == ["拜访", "跟台", "我的申请", "我的拜访", "帮助"]
    assert chip_texts([Role.MEMBER]) == ["我的任务", "待认领", "帮助"]
    assert chip_texts([Role.HEAD]) == ["部门待办", "超时", "帮助"]
    assert chip_texts([Role.MANAGER]) == ["日报", "帮助"]
    assert chip_texts([Role.ADMIN]) == ["升级策略", "管理帮助", "帮助"]


def test_several_roles_get_the_union_once_in_role_order() -> None:
    assert chip_texts([Role.HEAD, Role.MEMBER]) == ["我的任务", "待认领", "部门待办", "超时", "帮助"]
    assert chip_texts([Role.ADMIN, Role.DIRECTOR, Role.REP]) == [
        "拜访",
        "跟台",
        "我的申请",
        "我的拜访",
        "日报",
        "升级策略",
        "管理帮助",
        "帮助",
    ]


def test_chip_labels_follow_the_locale_and_send_the_command_word() -> None:
    chips = commands.chips([Role.REP], "en", REQUEST_TYPES)
    assert chips[0] == Chip("Visit", "拜访")
    assert chips[1] == Chip("Surgery support", "跟台")
    assert chips[-1] == Chip("Help", "帮助")


# ---- the suggestion card ----------------------------------------------------------------------------------------


def test_the_suggestion_button_carries_the_text_and_renders_on_every_channel() -> None:
    card = suggestion_card("sg-1", "zh-CN", "拜访 浙一 骨科")
    assert card is not None and card.title == "你是想「拜访 浙一 骨科」吗？"
    [button] = card.buttons
    assert unpack(button.key) == SuggestedText("拜访 浙一 骨科")
    rendered = wecom.render_template_card(card)
    assert rendered["main_title"]["title"] == "你是想「拜访 浙一 骨科」吗？"
    assert [b["key"] for b in rendered["button_list"]] == [button.key]


def test_a_suggestion_too_long_for_a_button_has_no_card() -> None:
    assert suggestion_card("sg-1", "zh-CN", "拜访 " + "浙" * 200) is None


# ---- scenarios (console and WeCom) ------------------------------------------------------------------------------


async def test_a_reps_typo_offers_the_command_and_its_button_sends_it(chat: Any, runtime: Runtime) -> None:
    rep = await chat("rep01")
    await rep.say("拜方 浙一 骨科")
    card = await last_card(rep)
    assert card.title == "你是想「拜访 浙一 骨科」吗？"
    assert card.buttons == ["发送"]
    assert await rep.new_texts() == []
    await rep.tap("发送", card)
    settled = next(c for c in await rep.cards() if c.ref == card.ref)
    assert settled.buttons == [] and "已发送" in settled.status
    # The visit dialog started with what the suggestion said: hospital and ward taken, it asks whom the rep met.
    seen = " ".join(await rep.new_texts()) + " ".join(c.title for c in await rep.cards())
    assert "见了谁" in seen and "哪家医院" not in seen and "哪个科室" not in seen


async def test_a_suggestion_whose_command_is_refused_says_why_and_keeps_its_button(chat: Any) -> None:
    admin = await chat("admin01")
    await admin.say("解索 V999")
    card = await last_card(admin)
    assert card.title == "你是想「解锁 V999」吗？"
    await admin.tap("发送", card)
    [text] = await admin.new_texts()
    assert "V999" in text  # the command's own refusal (no such visit), as if typed
    # Refused: nothing the tap did stays, so the suggestion can be tapped again.
    assert next(c for c in await admin.cards() if c.ref == card.ref).buttons == ["发送"]


@pytest.mark.parametrize("person", ["mgr01", "log01", "log_head"])
async def test_a_non_rep_gets_no_rep_example(chat: Any, person: str) -> None:
    someone = await chat(person)
    await someone.say("拜方 浙一 骨科")
    [text] = await someone.new_texts()
    assert "没听懂「拜方 浙一 骨科」" in text
    assert "拜访" not in text and "跟台" not in text
    assert await someone.cards() == []


async def test_with_nothing_close_the_hint_lists_the_roles_commands(chat: Any) -> None:
    rep, member, manager = await chat("rep01"), await chat("log01"), await chat("mgr01")
    await rep.say("今天天气不错")
    [text] = await rep.new_texts()
    assert text == "没听懂「今天天气不错」。你可以发：拜访、跟台、我的申请、我的拜访；发「帮助」查看全部用法。"
    await member.say("今天天气不错")
    [text] = await member.new_texts()
    assert text == "没听懂「今天天气不错」。你可以发：我的任务、待认领；发「帮助」查看全部用法。"
    await manager.say("今天天气不错")
    assert await manager.new_texts() == ["没听懂「今天天气不错」。你可以发：日报；发「帮助」查看全部用法。"]


async def test_the_admin_help_names_the_import_and_config_commands(chat: Any) -> None:
    admin, rep = await chat("admin01"), await chat("rep01")
    await admin.say("管理帮助")
    [text] = await admin.new_texts()
    for cli in ("salesbot import org", "salesbot import customers", "salesbot config check"):
        assert cli in text
    await rep.say("管理帮助")
    assert await rep.new_texts() == ["你没有权限执行此操作。"]
