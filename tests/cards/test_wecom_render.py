"""cards/wecom.py: documented limits, truncation of long Chinese text, task ids, splitting, update bodies.

Every body rendered here must pass the fake WeCom's validator (tests/fakes/wecom.py), the same oracle the
channel tests run against.
"""

from __future__ import annotations

import random
import re
from typing import Any

import pytest

from cards import wecom
from cards.model import Button, Card, CardField
from cards.visits import ConfirmOp, VisitChoice, VisitConfirm, confirm_card, settled_choice
from tests.fakes.wecom import validate_send, validate_update

HOSPITAL = "首都医科大学附属北京安贞医院心血管内科（朝阳院区）冠心病介入治疗中心"  # 34 characters
REMARK = "主任对新适应症的循证数据很感兴趣，希望下次带上三期临床的亚组分析，并安排科室会。" * 5
TASK_ID = re.compile(r"[0-9A-Za-z_\-@]{1,128}")


def make_card(**kw: object) -> Card:
    data: dict[str, object] = {"ref": "vc-t1-1", "title": "请确认拜访记录"}
    data.update(kw)
    return Card.model_validate(data)


def make_buttons(n: int) -> list[Button]:
    return [Button.of(f"选项{i}", VisitChoice("t1", "ward", str(i))) for i in range(n)]


def send(card: Card) -> dict[str, Any]:
    body = wecom.render_send_card(card, touser=["rep01"], agent_id=1000002, duplicate_check_seconds=None)
    assert validate_send(body) == []
    return body


def template(card: Card) -> dict[str, Any]:
    tc: dict[str, Any] = send(card)["template_card"]
    return tc


# ---- character limits -----------------------------------------------------------------------------------------


def test_long_chinese_text_is_cut_to_each_documented_limit() -> None:
    card = make_card(
        title=HOSPITAL + "拜访确认单",
        status="已提交 V12，" + HOSPITAL + "（待审批）",
        description=REMARK,
        fields=[CardField(label="医院名称全称", value=HOSPITAL)],
        buttons=[Button.of("提交并通知地区经理审批", VisitConfirm("t1", ConfirmOp.SUBMIT), "primary")],
    )
    tc = template(card)
    assert tc["main_title"] == {
        "title": (HOSPITAL + "拜访确认单")[:35] + "…",
        "desc": ("已提交 V12，" + HOSPITAL + "（待审批）")[:43] + "…",  # 47 characters before the cut
    }
    assert tc["sub_title_text"] == REMARK[:159] + "…"
    assert tc["horizontal_content_list"] == [{"keyname": "医院名称…", "value": HOSPITAL[:29] + "…"}]
    assert tc["button_list"] == [{"text": "提交并通知地区经理…", "style": 1, "key": "vc|t1|submit"}]


@pytest.mark.parametrize(
    ("field", "limit"),
    [("title", wecom.TITLE_MAX_CHARS), ("status", wecom.TITLE_DESC_MAX_CHARS), ("description", 160)],
)
def test_text_exactly_at_the_limit_is_kept_whole(field: str, limit: int) -> None:
    def shown(tc: dict[str, Any]) -> str:
        main = tc["main_title"]
        return str({"title": main["title"], "status": main.get("desc"), "description": tc.get("sub_title_text")}[field])

    exact = ("协和" * limit)[:limit]
    assert shown(template(make_card(**{field: exact}))) == exact
    assert shown(template(make_card(**{field: exact + "院"}))) == exact[:-1] + "…"


def test_line_breaks_in_one_line_fields_become_spaces() -> None:
    tc = template(make_card(title="拜访\n确认", fields=[CardField(label="科\n室", value="心内\n\n科")]))
    assert tc["main_title"]["title"] == "拜访 确认"
    assert tc["horizontal_content_list"] == [{"keyname": "科 室", "value": "心内 科"}]


def test_confirm_card_from_the_visit_dialog_passes_the_validator() -> None:
    rows = [("客户", HOSPITAL), ("时间", "2026-11-23 10:00"), ("备注", REMARK)]
    tc = template(confirm_card("vc-t1-1", "t1", "zh", rows))
    assert [b["text"] for b in tc["button_list"]] == ["提交", "修改", "取消"]
    assert [b["style"] for b in tc["button_list"]] == [1, 2, 3]


# ---- fields and buttons ---------------------------------------------------------------------------------------


def test_eight_fields_show_six_and_fold_the_rest_into_the_sub_title() -> None:
    fields = [CardField(label=f"字段{i}", value=f"值{i}") for i in range(8)]
    tc = template(make_card(description="请核对", fields=fields))
    assert [h["keyname"] for h in tc["horizontal_content_list"]] == [f"字段{i}" for i in range(6)]
    assert tc["sub_title_text"] == "请核对\n字段6：值6\n字段7：值7"


def test_folded_fields_are_cut_with_the_sub_title() -> None:
    fields = [CardField(label=f"备注{i}", value=REMARK) for i in range(8)]
    tc = template(make_card(fields=fields))
    assert len(tc["sub_title_text"]) == 160
    assert tc["sub_title_text"].startswith("备注6：主任")
    assert tc["sub_title_text"].endswith("…")


def test_seven_buttons_keep_the_first_six() -> None:
    tc = template(make_card(buttons=make_buttons(7)))
    assert [b["text"] for b in tc["button_list"]] == [f"选项{i}" for i in range(6)]


def test_repeated_button_keys_are_dropped() -> None:
    same = VisitConfirm("t1", ConfirmOp.SUBMIT)
    buttons = [Button.of("提交", same), Button.of("再提交", same), *make_buttons(6)]
    tc = template(make_card(buttons=buttons))
    keys = [b["key"] for b in tc["button_list"]]
    assert keys[0] == "vc|t1|submit"
    assert len(keys) == len(set(keys)) == 6


def test_a_button_key_over_1024_bytes_is_refused() -> None:
    card = make_card(buttons=[Button(text="长", key="键" * 342)])  # 1026 bytes
    with pytest.raises(ValueError, match="1024"):
        wecom.render_template_card(card)
    ok = template(make_card(buttons=[Button(text="长", key="k" + "键" * 341)]))  # exactly 1024 bytes
    assert len(ok["button_list"][0]["key"].encode()) == 1024


def test_source_takes_the_tone_colour() -> None:
    tc = wecom.render_template_card(make_card(tone="success"), source="华东大区销售助手（试运行版本）")
    assert tc["source"] == {"desc": "华东大区销售助手（试运行版本）", "desc_color": 3}
    assert validate_send({"touser": "a", "msgtype": "template_card", "agentid": 1, "template_card": tc}) == []


def test_random_cards_always_pass_the_validator() -> None:
    rng = random.Random(20261123)
    alphabet = "心内科北京协和医院主任ABCxyz 0123\n·—（）😀"

    def words(most: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, most)))

    for n in range(300):
        card = Card(
            ref=words(200) or "r",
            title=words(60),
            description=words(400),
            status=words(80),
            fields=[CardField(label=words(12), value=words(60)) for _ in range(rng.randint(0, 10))],
            buttons=[Button(text=words(20), key=f"k{n}-{i}") for i in range(rng.randint(0, 8))],
            tone=rng.choice(["info", "success", "warning", "muted"]),
        )
        send(card)  # asserts the validator passes


# ---- task ids -------------------------------------------------------------------------------------------------


def test_safe_refs_are_their_own_task_id() -> None:
    assert wecom.task_id_for("vc-3f9a_2") == "vc-3f9a_2"


def test_other_characters_are_escaped_injectively() -> None:
    assert wecom.task_id_for("a:b") == "a@3Ab"
    assert wecom.task_id_for("@") == "@40"
    assert wecom.task_id_for("@3A") != wecom.task_id_for(":")
    assert wecom.task_id_for("客户") == "@E5@AE@A2@E6@88@B7"


def test_long_refs_keep_a_prefix_and_a_hash() -> None:
    long_ref = "visit-" + "x" * 300
    tid = wecom.task_id_for(long_ref)
    assert len(tid) == 128
    assert tid.startswith("visit-xxx")
    assert tid != wecom.task_id_for(long_ref + "y")
    assert wecom.task_id_for(long_ref) == tid


def test_refs_around_the_128_byte_boundary() -> None:
    assert wecom.task_id_for("a" * 128) == "a" * 128
    assert len(wecom.task_id_for("a" * 129)) == 128
    assert wecom.task_id_for("a" * 129) != wecom.task_id_for("a" * 128)
    # "客" escapes to 9 bytes: 14 of them take 126 bytes, 15 would take 135 and are hashed.
    assert len(wecom.task_id_for("客" * 14)) == 126
    assert len(wecom.task_id_for("客" * 15)) == 128


def test_ten_thousand_random_refs_give_distinct_valid_task_ids() -> None:
    rng = random.Random(7)
    pool = "ab@_-:/ 客户😀é" + "0123456789"
    refs = {"".join(rng.choice(pool) for _ in range(rng.randint(1, 80))) for _ in range(10_000)}
    # Long refs that share a 100-character prefix must still differ.
    refs |= {"p" * 100 + str(i) + rng.choice(pool) * rng.randint(30, 60) for i in range(500)}
    ids = {wecom.task_id_for(r) for r in refs}
    assert len(ids) == len(refs)
    assert all(TASK_ID.fullmatch(t) and len(t.encode()) <= 128 for t in ids)


def test_an_empty_ref_is_refused() -> None:
    with pytest.raises(ValueError):
        wecom.task_id_for("")


# ---- splitting ------------------------------------------------------------------------------------------------


def test_a_single_long_chinese_line_is_cut_between_characters() -> None:
    text = "协和" * 1000  # 6000 bytes, one line
    parts = wecom.split_text(text)
    assert "".join(parts) == text
    assert [len(p.encode()) for p in parts] == [2046, 2046, 1908]


def test_four_byte_characters_fill_the_limit_exactly() -> None:
    parts = wecom.split_text("😀" * 600)
    assert [len(p.encode()) for p in parts] == [2048, 352]
    parts = wecom.split_text("a" + "😀" * 600)
    assert "".join(parts) == "a" + "😀" * 600
    assert all(len(p.encode()) <= 2048 for p in parts)


def test_splits_fall_between_lines_when_they_can() -> None:
    line = "拜访记录第" + "一" * 336  # 1023 bytes
    assert wecom.split_text(f"{line}\n{line}") == [f"{line}\n{line}"]  # 2047 bytes
    wider = line + "a"  # 1024 bytes: with the newline, 2049
    assert wecom.split_text(f"{wider}\n{wider}") == [wider, wider]


def test_a_part_of_exactly_the_limit_stays_one_part() -> None:
    exact = "a" * 2048
    assert wecom.split_text(exact) == [exact]
    assert wecom.split_text(exact + "b") == [exact, "b"]
    assert wecom.split_markdown("x" * 2047 + "\n") == ["x" * 2047 + "\n"]
    assert wecom.split_markdown("x" * 2048 + "\n") == ["x" * 2048]


def test_many_lines_pack_greedily_and_keep_their_order() -> None:
    lines = [f"{i:03d} {REMARK[: i % 50]}" for i in range(200)]
    parts = wecom.split_markdown("\n".join(lines))
    assert len(parts) > 1
    assert "\n".join(parts).split("\n") == lines
    for p in parts:
        body = wecom.render_send_markdown(p, touser=["rep01"], agent_id=1, duplicate_check_seconds=None)
        assert validate_send(body) == []


def test_blank_input_gives_no_parts() -> None:
    assert wecom.split_text("") == []
    assert wecom.split_text("\n \n") == []


def test_a_limit_below_one_character_is_refused() -> None:
    with pytest.raises(ValueError):
        wecom.split_text("abc", limit_bytes=3)


# ---- send bodies ----------------------------------------------------------------------------------------------


def test_text_body_and_duplicate_check() -> None:
    body = wecom.render_send_text("你好", touser=["rep01", "Mgr02"], agent_id=7, duplicate_check_seconds=None)
    assert body == {"touser": "rep01|Mgr02", "msgtype": "text", "agentid": 7, "text": {"content": "你好"}}
    body = wecom.render_send_text("你好", touser=["rep01"], agent_id=7, duplicate_check_seconds=99999)
    assert body["enable_duplicate_check"] == 1
    assert body["duplicate_check_interval"] == 4 * 3600
    assert validate_send(body) == []


def test_overlong_text_is_cut_to_2048_bytes() -> None:
    body = wecom.render_send_text("协" * 700, touser=["rep01"], agent_id=1, duplicate_check_seconds=600)
    content = body["text"]["content"]
    assert content.endswith("…")
    assert len(content.encode()) == 2046
    assert validate_send(body) == []


def test_empty_text_and_no_recipients_are_refused() -> None:
    with pytest.raises(ValueError):
        wecom.render_send_text(" ", touser=["rep01"], agent_id=1, duplicate_check_seconds=None)
    with pytest.raises(ValueError):
        wecom.render_send_markdown("**hi**", touser=[], agent_id=1, duplicate_check_seconds=None)
    with pytest.raises(ValueError):
        many = [f"u{i}" for i in range(1001)]
        wecom.render_send_card(make_card(), touser=many, agent_id=1, duplicate_check_seconds=None)


# ---- settled cards and updates --------------------------------------------------------------------------------


def test_a_settled_card_keeps_one_greyed_status_button() -> None:
    settled = confirm_card("vc-t1-1", "t1", "zh", [("客户", HOSPITAL)], status="已提交 V12", settled=True)
    body = wecom.render_update(settled, userids=["rep01"], agent_id=1000002, response_code="rc-1")
    assert validate_update(body) == []
    assert body["userids"] == ["rep01"]
    assert body["response_code"] == "rc-1"
    tc = body["template_card"]
    assert "task_id" not in tc
    assert tc["main_title"] == {"title": "请确认拜访记录", "desc": "已提交 V12"}
    assert tc["button_list"] == [{"text": "已提交 V12", "style": 2, "key": wecom.SETTLED_KEY}]
    assert tc["replace_text"] == "已提交 V12"
    assert tc["horizontal_content_list"][0]["value"] == HOSPITAL[:29] + "…"


def test_a_settled_choice_shows_the_whole_answer_under_the_title() -> None:
    card = settled_choice("vq-t1-2", "拜访的是哪个科室？", "心血管内科（北院区）")
    tc = wecom.render_update(card, userids=["rep01"], agent_id=1, response_code="rc")["template_card"]
    assert tc["main_title"]["desc"] == "✓ 心血管内科（北院区）"
    assert tc["replace_text"] == "✓ 心血管内科（北…"


def test_a_settled_card_without_status_still_greys_its_button() -> None:
    tc = wecom.render_template_card(make_card())
    assert tc["replace_text"] == wecom.SETTLED_FALLBACK
    assert len(tc["button_list"]) == 1


def test_an_update_to_a_live_card_keeps_its_buttons() -> None:
    card = make_card(buttons=make_buttons(3), fields=[CardField(label="客户", value="协和")])
    body = wecom.render_update(card, userids=["rep01", "mgr01"], agent_id=1, response_code="rc")
    assert validate_update(body) == []
    assert [b["text"] for b in body["template_card"]["button_list"]] == ["选项0", "选项1", "选项2"]
    assert "replace_text" not in body["template_card"]


def test_an_update_needs_a_response_code_and_users() -> None:
    with pytest.raises(ValueError):
        wecom.render_update(make_card(), userids=["rep01"], agent_id=1, response_code="")
    with pytest.raises(ValueError):
        wecom.render_update(make_card(), userids=[], agent_id=1, response_code="rc")


def test_dedup_tags_are_invisible_distinct_and_strippable() -> None:
    from cards.wecom import DEDUP_TAG_MAX_BYTES, dedup_tag, strip_dedup_tag

    tags = {dedup_tag(f"{i}.{n}") for i in range(1, 5000) for n in range(2)}
    assert len(tags) == 9998
    assert all(t and set(t) <= set("\u200b\u200c\u200d\u2060") for t in tags)
    assert max(len(t.encode()) for t in tags) <= DEDUP_TAG_MAX_BYTES
    assert strip_dedup_tag("你好" + dedup_tag("42.0")) == "你好"


def test_media_messages_carry_the_media_id() -> None:
    from cards.wecom import render_send_media
    from tests.fakes.wecom import validate_send

    body = render_send_media("image", "MEDIA_1", touser=["rep01"], agent_id=1000002, duplicate_check_seconds=None)
    assert body == {"touser": "rep01", "msgtype": "image", "agentid": 1000002, "image": {"media_id": "MEDIA_1"}}
    assert validate_send(body) == []
    with pytest.raises(ValueError):
        render_send_media("sticker", "MEDIA_1", touser=["rep01"], agent_id=1, duplicate_check_seconds=None)
    assert validate_send({**body, "image": {}}) != []


def test_buttons_that_read_the_same_once_cut_show_what_tells_them_apart() -> None:
    """Found by the visit scenarios on WeCom: the three 浙江大学医学院附属… hospitals offered as candidates were three
    identical buttons "浙江大学医学院附属…" (cut at 10 characters), so the rep could not tell which was which."""
    names = [
        "浙江大学医学院附属第一医院",
        "浙江大学医学院附属第二医院",
        "浙江大学医学院附属邵逸夫医院",
        "浙江省人民医院",
    ]
    buttons = [Button.of(n, VisitChoice("t1", "customer", str(i))) for i, n in enumerate(names)]
    tc = template(make_card(buttons=buttons))
    assert [b["text"] for b in tc["button_list"]] == ["…第一医院", "…第二医院", "…邵逸夫医院", "浙江省人民医院"]
    # Long distinct ends are cut too; texts that differ only in what is kept whole stay as they were.
    long_ends = ["某某医学院附属医院" + "甲" * 12, "某某医学院附属医院" + "乙" * 12, "短名"]
    buttons = [Button.of(n, VisitChoice("t1", "customer", str(i))) for i, n in enumerate(long_ends)]
    texts = [b["text"] for b in template(make_card(buttons=buttons))["button_list"]]
    assert texts == ["…" + "甲" * 8 + "…", "…" + "乙" * 8 + "…", "短名"]
    assert all(len(t) <= wecom.BUTTON_TEXT_MAX_CHARS for t in texts)
