"""Routers declare the command words they answer; `config check` refuses them as request-type keywords (issue 10 §5:
the hand-kept list missed 11 live commands, so a request type with the keyword `history` passed the check and was
then swallowed by the escalation router)."""

from __future__ import annotations

from typing import Any

import pytest

from bot.config import ConfigError, parse_settings
from bot.core.routing import Router, command, exact
from handlers import ROUTERS, command_words

MISSED_BEFORE = (
    "myvisits",
    "myrequests",
    "?",
    "？",
    "算了",
    "退出",
    "升级记录",
    "escalations",
    "history",
    "升级策略",
    "policy",
)


def _request_type(keyword: str) -> dict[str, Any]:
    return {
        "request_types": {
            "repair": {
                "name_zh": "维修",
                "name_en": "Repair",
                "keywords": [keyword],
                "fields": [{"key": "customer", "label_zh": "医院", "label_en": "Hospital", "type": "customer"}],
                "tasks": [{"department": "logistics", "title_zh": "维修 {{ customer }}"}],
            }
        }
    }


@pytest.mark.parametrize("word", MISSED_BEFORE)
def test_a_request_type_keyword_that_a_router_answers_is_refused(word: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_settings(_request_type(word), reserved=command_words())
    [issue] = [i for i in err.value.issues if i.path == "request_types.repair.keywords.0"]
    assert "built-in command" in issue.message


def test_a_keyword_no_router_answers_is_accepted() -> None:
    settings = parse_settings(_request_type("维修"), reserved=command_words())
    assert settings.request_types["repair"].keywords == ["维修"]


def test_every_text_command_of_every_router_is_declared() -> None:
    words = command_words()
    # One from each router that has text commands, and width/case variants fold to the same word.
    for word in (
        "帮助",
        "取消",
        "升级记录",
        "我的申请",
        "拜访",
        "解锁",
        "我的拜访",
        "计划",
        "我的计划",
        "取消计划",
        "历史",
    ):
        assert word in words
    assert all(w == w.casefold() for w in words)
    assert len(ROUTERS) >= 5


def test_a_router_collects_the_words_of_its_command_and_exact_filters() -> None:
    router = Router("t")

    @router.route(command("Plan", "计划"))
    async def plan(ctx: Any) -> None: ...

    @router.route(exact("ＯＫ"))  # full-width
    async def ok(ctx: Any) -> None: ...

    assert router.command_words() == {"plan", "计划", "ok"}
