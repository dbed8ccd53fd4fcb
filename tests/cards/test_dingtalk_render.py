"""cards/dingtalk.py: the card's template variables (and the shipped template declaring them), outTrackIds, the
DingTalk markdown of rich text, action-card fallbacks."""

from __future__ import annotations

import json
from pathlib import Path

from cards import dingtalk as render
from cards.model import Button, Card, CardField
from cards.rich import Line, RichText, Section, Span, Table

ROOT = Path(__file__).resolve().parents[2]


def _card(**kw: object) -> Card:
    base: dict[str, object] = {
        "ref": "tc-7",
        "title": "备货申请",
        "fields": [CardField(label="客户", value="协和")],
        "buttons": [Button(text="接单", key="tk|7|take")],
    }
    return Card.model_validate(base | kw)


def test_every_param_is_a_string_within_1_kb_and_the_template_declares_them() -> None:
    card = _card(description="长" * 2000, fields=[CardField(label=f"字段{i}", value="值" * 100) for i in range(30)])
    params = render.card_param_map(card)
    assert all(isinstance(v, str) and len(v.encode()) <= render.PARAM_MAX_BYTES for v in params.values())
    assert json.loads(params["fields"]) and json.loads(params["buttons"])[0]["key"] == "tk|7|take"
    template = json.loads((ROOT / "cards" / "dingtalk_template.json").read_text(encoding="utf-8"))
    declared = {v["name"] for v in json.loads(template["editorData"])["variableList"]}
    assert declared == set(params)


def test_a_card_keeps_every_button_wecom_shows() -> None:
    """An escalation notice has five buttons (接手 转派 暂缓1小时 暂缓4小时 明早9点), a queue page four 打开 and 下一页:
    the DingTalk card shows them all, as WeCom does (up to six), keys intact."""
    labels = ["接手", "转派", "暂缓1小时", "暂缓4小时", "明早9点", "不处理"]
    buttons = [Button(text=t, key=f"es|12|{n}|log01") for n, t in enumerate(labels)]
    shown = json.loads(render.card_param_map(_card(buttons=buttons))["buttons"])
    assert [(b["text"], b["key"]) for b in shown] == [(b.text, b.key) for b in buttons]


def test_out_track_ids_are_stable_distinct_and_safe() -> None:
    assert render.out_track_id("tc-7") == render.out_track_id("tc-7") == "tc-7"
    ids = {render.out_track_id(r) for r in ("tc-7", "tc-8", "tc-7-o1", "拜访/7", "拜访/8", "x" * 300, "x" * 301)}
    assert len(ids) == 7
    assert all(len(i) <= render.OUT_TRACK_ID_MAX and all(c in render._SAFE for c in i) for i in ids)


def test_rich_text_becomes_dingtalk_markdown_in_parts() -> None:
    rich = RichText(
        title="周报 [A]",
        sections=tuple(
            Section(
                title=f"第{n}组",
                lines=tuple(Line.of(f"{i} 号客户 ", Span(text="已拜访", bold=True), bullet=True) for i in range(40)),
                table=Table(header=("客户", "次数"), rows=(("协和*", "3"),)),
            )
            for n in range(8)
        ),
    )
    parts = render.rich_markdown(rich, 2000)
    assert len(parts) > 1
    assert all(len(text.encode()) <= 2000 for _, text in parts)
    assert parts[0][0] == "周报 [A]" and parts[1][0].endswith("（续）")
    assert parts[0][1].startswith("### 周报 ［A］")
    joined = "\n\n".join(t for _, t in parts)
    assert "- 0 号客户 **已拜访**" in joined and "- 客户：协和＊，次数：3" in joined


def test_the_fallback_action_card_has_one_url_per_button() -> None:
    key, param = render.action_card(_card(), ["https://b/1"])
    assert key == "sampleActionCard" and param["singleURL"] == "https://b/1" and param["singleTitle"] == "接单"
    buttons = [Button(text=f"按钮{i}", key=f"k{i}") for i in range(7)]
    key, param = render.action_card(_card(buttons=buttons), [f"https://b/{i}" for i in range(5)])
    assert key == "sampleActionCard5" and param["actionURL5"] == "https://b/4" and "actionURL6" not in param
    key, param = render.action_card(_card(buttons=[], status="已办结"), [])
    assert key == "sampleMarkdown" and "**已办结**" in param["text"]
