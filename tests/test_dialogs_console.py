"""The dialog engine (issue 10 §3): what is not a conversation on a channel. The defects it fixed are scenarios,
written once for the console and WeCom in tests/scenarios/test_visits.py and test_requests.py."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from bot.infra import i18n
from bot.runtime import Runtime
from handlers.requests import request_form
from handlers.visits import visit_form
from storage.models import Conversation
from tests.console_driver import ConsoleUser

VISIT = "拜访 浙一 骨科 张主任 异议:价格"


def buttons(card: dict[str, Any]) -> list[str]:
    return [b["text"] for b in card["buttons"]]


async def confirm_card(user: ConsoleUser, line: str) -> dict[str, Any]:
    await user.send(line)
    await user.refresh()
    card = user.last_card()
    assert buttons(card) == ["提交", "修改", "取消"], card
    return card


# ---- the card's own labels ---------------------------------------------------------------------------------------


def test_every_label_a_card_shows_is_a_correction_key(runtime: Runtime) -> None:
    """Labels and aliases come from one spec: every row label of either card, in either language, names its field."""
    settings = runtime.settings
    forms = [visit_form(settings.visits.required_fields)] + [request_form(rt) for rt in settings.request_types.values()]
    for form in forms:
        for f in form.fields:
            for locale in (i18n.ZH, i18n.EN):
                label = f.label(locale)
                assert form.key_for(label) == f.key, label
                assert form.correction(f"{label}:x") == "direct", label


# ---- stored state of an older version ---------------------------------------------------------------------------


async def test_a_dialog_stored_in_an_older_shape_starts_afresh_with_a_short_message(
    console: Any, runtime: Runtime
) -> None:
    rep = await console("rep01")
    await rep.send("帮助")
    await rep.replies()
    old_visit = {"token": "ab12cd34", "draft": {"customer_id": 1}, "stage": "collect", "awaiting": "ward", "seq": 1}
    async with runtime.db.transaction() as s:
        now = runtime.clock.now()
        s.add(Conversation(channel="console", user_id="rep01", flow="visit", data=old_visit, updated_at=now,
                           expires_at=now + timedelta(minutes=30), version=1))  # fmt: skip
    await rep.send("骨科")
    assert await rep.replies() == [i18n.t("zh-CN", "dialog.stale_state")]
    await rep.post("/console/api/action", {"client_id": uuid.uuid4().hex, "payload": "vf|ab12cd34|ward|骨科"})
    assert await rep.replies() == ["这个按钮已过期，请重新发起。"]
    await confirm_card(rep, VISIT)  # and a new dialog works

    old_request = {"token": "ef56", "type": "surgery_support", "values": {"customer": "x"}, "stage": "confirm"}
    async with runtime.db.transaction() as s:
        row = await s.get(Conversation, ("console", "rep01"))
        assert row is not None
        row.flow, row.data = "request", old_request
    await rep.send("器械:关节B包")
    assert await rep.replies() == [i18n.t("zh-CN", "dialog.stale_state")]
