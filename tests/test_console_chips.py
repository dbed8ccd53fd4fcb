"""The console knows who you are (issue 11): /console/api/me and the sign-in answer carry the chips of the person's
roles, decided by ``bot.services.commands`` (the page renders what it is given)."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.mark.parametrize(
    ("user_id", "texts"),
    [
        ("rep01", ["拜访", "跟台", "我的申请", "我的拜访", "帮助"]),
        ("log01", ["我的任务", "待认领", "帮助"]),
        ("log_head", ["部门待办", "超时", "帮助"]),
        ("mgr01", ["日报", "帮助"]),
        ("dir01", ["日报", "升级策略", "帮助"]),
        ("admin01", ["升级策略", "管理帮助", "帮助"]),
    ],
)
async def test_me_carries_the_chips_of_the_persons_roles(console: Any, user_id: str, texts: list[str]) -> None:
    user = await console(user_id)
    async with user.session.get(user.server.make_url("/console/api/me")) as resp:
        data = await resp.json()
    chips = data["user"]["chips"]
    assert [c["text"] for c in chips] == texts
    assert chips[-1] == {"label": "帮助", "text": "帮助"}


async def test_the_sign_in_answer_carries_the_same_chips(console: Any) -> None:
    user = await console("log01")
    async with user.session.post(user.server.make_url("/console/api/login"), json={"user_id": "log01"}) as resp:
        data = await resp.json()
    assert [c["text"] for c in data["user"]["chips"]] == ["我的任务", "待认领", "帮助"]
