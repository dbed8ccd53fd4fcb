"""Platform tokens stay in their channel (issue 10 §2): handlers, services, the routing and pipeline core and the
neutral card model never name a platform or its update token; each channel keeps its own (and its own limits)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cards import wecom
from cards.model import Button, Card
from cards.tasks import TaskOp, TaskTap

ROOT = Path(__file__).resolve().parents[2]
# The check: grep -rniE "wecom|dingtalk|response_code" over these finds nothing.
NEUTRAL = (
    "handlers",
    "bot/services",
    "bot/dialogs",
    "bot/core/routing.py",
    "bot/core/events.py",
    "bot/core/intents.py",
    "bot/pipeline.py",
    "bot/outbox.py",
    "cards/model.py",
    "cards/payload.py",
)
PLATFORM = re.compile("wecom|dingtalk|response_code", re.IGNORECASE)


def _files(path: str) -> list[Path]:
    target = ROOT / path
    return sorted(p for p in target.rglob("*") if p.is_file() and p.suffix == ".py") if target.is_dir() else [target]


@pytest.mark.parametrize("path", NEUTRAL)
def test_the_neutral_modules_never_name_a_platform_or_its_tokens(path: str) -> None:
    files = _files(path)
    assert files, f"{path} has no Python files: the check would prove nothing"
    hits = [
        f"{f.relative_to(ROOT)}:{n}: {line.strip()}"
        for f in files
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1)
        if PLATFORM.search(line)
    ]
    assert hits == []


def payload_of(i: int) -> TaskTap:
    return TaskTap(card_id=i, op=TaskOp.CLAIM)


def test_the_card_model_takes_what_a_platform_cannot_show_and_the_renderer_cuts_it() -> None:
    """A neutral card may have a long ref and many buttons; the WeCom renderer applies WeCom's limits."""
    buttons = [Button.of(f"b{i}", payload_of(i)) for i in range(9)]
    card = Card(ref="r" * 400, title="t", buttons=buttons)
    tc = wecom.render_template_card(card)
    assert len(tc["task_id"].encode()) <= wecom.TASK_ID_MAX_BYTES
    assert len(tc["button_list"]) == wecom.MAX_BUTTONS
