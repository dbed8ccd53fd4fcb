"""Task card titles in the org's language (issue 10 §5: English orgs got the Chinese title, ``title_en`` was never
rendered)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from bot.config import RequestTaskConfig
from bot.infra import i18n
from bot.runtime import Runtime
from bot.services.requests import task_title
from storage.models import TaskCard

SURGERY = "跟台 浙一 骨科 2026-11-25 器械:脊柱A包 备注:王主任主刀"


async def _submit_surgery(console: Any, runtime: Runtime) -> dict[str, str]:
    """rep01 submits the surgery request; the task cards' titles by department."""
    rep = await console("rep01")
    await rep.send(SURGERY)
    await rep.refresh()
    await rep.tap("提交")
    async with runtime.db.read() as s:
        return {c.department: c.title for c in await s.scalars(select(TaskCard))}


@pytest.mark.parametrize("settings_overrides", [{"org": {"default_locale": "en"}}], ids=["en"])
async def test_english_org_task_card_shows_title_en(console: Any, runtime: Runtime) -> None:
    titles = await _submit_surgery(console, runtime)
    assert titles["logistics"] == "Reserve kit 脊柱A包 (2026-11-25)"
    assert titles["compliance"] == "Authorisation review: 浙江大学医学院附属第一医院"
    log01 = await console("log01")
    await log01.refresh()
    [shown] = log01.cards().values()
    assert shown["title"].endswith("｜Reserve kit 脊柱A包 (2026-11-25)")


async def test_chinese_org_task_card_keeps_title_zh(console: Any, runtime: Runtime) -> None:
    titles = await _submit_surgery(console, runtime)
    assert titles["compliance"] == "授权审核：浙江大学医学院附属第一医院"


def test_english_title_falls_back_to_chinese_when_empty() -> None:
    task = RequestTaskConfig(department="logistics", title_zh="备器械 {{ kit }}", title_en=" ")
    assert task_title(task, i18n.EN) == "备器械 {{ kit }}"
    assert task_title(task, "en-GB") == "备器械 {{ kit }}"
    both = RequestTaskConfig(department="logistics", title_zh="备器械 {{ kit }}", title_en="Kit {{ kit }}")
    assert (task_title(both, i18n.EN), task_title(both, i18n.ZH)) == ("Kit {{ kit }}", "备器械 {{ kit }}")
