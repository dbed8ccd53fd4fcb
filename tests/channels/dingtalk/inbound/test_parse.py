"""Robot messages and card taps → neutral events, for every message type DingTalk sends, and every malformed
shape refused with a 400 (payloads as the official SDK reads them: tests/fakes/dingtalk_callbacks.py)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from bot.channels.dingtalk.parse import (
    Ignored,
    RobotMessage,
    check_robot_code,
    error_code,
    load_json,
    parse_card,
    parse_robot,
    ref_from_out_track_id,
    strip_mentions,
)
from bot.channels.dingtalk.sign import CallbackRejected
from bot.core.events import CardAction, MediaMessage, TextMessage
from tests.fakes.dingtalk_callbacks import DingTalkSigner

NOW_MS = 1_795_312_800_000
ROBOT = "dingrobotsalesbot01"


@pytest.fixture
def dt() -> DingTalkSigner:
    return DingTalkSigner("s" * 32, ROBOT, "c" * 32)


def robot(doc: dict[str, Any]) -> RobotMessage:
    parsed = parse_robot(doc)
    assert isinstance(parsed, RobotMessage)
    return parsed


def test_text(dt: DingTalkSigner) -> None:
    parsed = robot(dt.text("staff-rep01", "帮助", NOW_MS, msg_id="msgA1=="))
    assert parsed.events == (
        TextMessage(channel="dingtalk", sender="staff-rep01", dedup_key="msg:msgA1==", text="帮助"),
    )
    assert (parsed.group, parsed.unsupported) == (False, "")


def test_create_at_may_be_a_string(dt: DingTalkSigner) -> None:
    assert robot(dt.text("staff-rep01", "帮助", NOW_MS, create_at_as_string=True)).events


@pytest.mark.parametrize("value", [1.5, "12a", -1, True, [1]])
def test_create_at_of_another_shape_is_refused(dt: DingTalkSigner, value: Any) -> None:
    with pytest.raises(CallbackRejected) as exc:
        parse_robot(dt.text("staff-rep01", "帮助", NOW_MS) | {"createAt": value})
    assert exc.value.status == 400


def test_picture_file_video_are_media_with_the_download_code(dt: DingTalkSigner) -> None:
    docs = [
        dt.picture("staff-rep01", "dlPIC1", NOW_MS),
        dt.file("staff-rep01", "dlFILE1", "授权书.pdf", NOW_MS),
        dt.video("staff-rep01", "dlVID1", NOW_MS),
    ]
    events = [robot(d).events[0] for d in docs]
    assert [(e.media_type, e.media_id, e.filename) for e in events if isinstance(e, MediaMessage)] == [
        ("image", "dlPIC1", ""),
        ("file", "dlFILE1", "授权书.pdf"),  # the file's name is kept (the store cleans it)
        ("video", "dlVID1", ""),
    ]


def test_a_file_name_that_is_not_a_string_is_refused(dt: DingTalkSigner) -> None:
    doc = dt.file("staff-rep01", "dlFILE1", "x.pdf", NOW_MS)
    doc["content"]["fileName"] = ["x.pdf"]
    with pytest.raises(CallbackRejected) as exc:
        parse_robot(doc)
    assert exc.value.status == 400


def test_audio_is_its_recognition_as_dictated_text(dt: DingTalkSigner) -> None:
    (event,) = robot(dt.audio("staff-rep01", "dlAUD1", "拜访 浙一 骨科 张主任", NOW_MS, msg_id="msgV==")).events
    assert event == TextMessage(
        channel="dingtalk", sender="staff-rep01", dedup_key="msg:msgV==", text="拜访 浙一 骨科 张主任", dictated=True
    )


def test_audio_without_recognition_is_voice_media(dt: DingTalkSigner) -> None:
    (event,) = robot(dt.audio("staff-rep01", "dlAUD2", "  ", NOW_MS)).events
    assert isinstance(event, MediaMessage) and (event.media_type, event.media_id) == ("voice", "dlAUD2")


def test_rich_text_is_one_text_then_one_image_per_picture(dt: DingTalkSigner) -> None:
    parts = [
        {"text": "跟台 浙一"},
        {"type": "picture", "downloadCode": "dlP1", "pictureDownloadCode": "dlP1"},
        {"text": "骨科 明天"},
        {"type": "picture", "downloadCode": "dlP2"},
    ]
    events = robot(dt.rich_text("staff-rep01", parts, NOW_MS, msg_id="msgR==")).events
    assert [e.dedup_key for e in events] == ["msg:msgR==", "msg:msgR==:1", "msg:msgR==:3"]
    assert isinstance(events[0], TextMessage) and events[0].text == "跟台 浙一\n骨科 明天"
    assert [e.media_id for e in events[1:] if isinstance(e, MediaMessage)] == ["dlP1", "dlP2"]


def test_rich_text_of_pictures_only(dt: DingTalkSigner) -> None:
    events = robot(dt.rich_text("staff-rep01", [{"type": "picture", "downloadCode": "dlP"}], NOW_MS)).events
    assert [e.kind for e in events] == ["media"]


def test_unknown_types_are_unsupported_without_events(dt: DingTalkSigner) -> None:
    parsed = robot(dt.unknown("staff-rep01", NOW_MS))
    assert (parsed.events, parsed.unsupported) == ((), "unknownMsgType")
    assert robot(dt.message("staff-rep01", "interactiveCard", NOW_MS)).unsupported == "interactiveCard"


def test_group_message_strips_the_mentions_and_keeps_the_person(dt: DingTalkSigner) -> None:
    doc = dt.text("staff-rep01", "@销售助手\u2005拜访 浙一 骨科", NOW_MS, group=True)
    parsed = robot(doc)
    assert parsed.group and parsed.conversation_id == "cidGroupSales0001=="
    (event,) = parsed.events
    assert isinstance(event, TextMessage) and (event.sender, event.text) == ("staff-rep01", "拜访 浙一 骨科")


def test_a_group_message_not_for_the_robot_is_ignored(dt: DingTalkSigner) -> None:
    assert isinstance(parse_robot(dt.text("staff-rep01", "大家好", NOW_MS, group=True, at_robot=False)), Ignored)


@pytest.mark.parametrize(
    ("text", "stripped"),
    [
        ("@销售助手 帮助", "帮助"),
        (" @销售助手\u2005@李四\u2005 跟台", "跟台"),
        ("帮助 @李四", "帮助 @李四"),
        ("  帮助", "帮助"),
        ("@销售助手", "@销售助手"),  # nothing after the name: not a mention followed by words
    ],
)
def test_strip_mentions(text: str, stripped: str) -> None:
    assert strip_mentions(text) == stripped


def test_robot_code(dt: DingTalkSigner) -> None:
    doc = dt.text("staff-rep01", "帮助", NOW_MS)
    check_robot_code(doc, ROBOT)
    with pytest.raises(CallbackRejected) as exc:
        check_robot_code(doc, "dingotherrobot")
    assert exc.value.status == 403
    for bad in ({"robotCode": None}, {"robotCode": 5}):
        with pytest.raises(CallbackRejected) as exc:
            check_robot_code(doc | bad, ROBOT)
        assert exc.value.status == 400


def test_the_quota_notice(dt: DingTalkSigner) -> None:
    assert error_code(dt.quota_spent(NOW_MS)) == 20001
    assert error_code({"errorCode": "20001"}) == 20001
    assert error_code(dt.text("staff-rep01", "帮助", NOW_MS)) is None
    with pytest.raises(CallbackRejected):
        error_code({"errorCode": [1]})


def test_long_msg_ids_are_hashed_into_the_column(dt: DingTalkSigner) -> None:
    (event,) = robot(dt.text("staff-rep01", "帮助", NOW_MS, msg_id="m" * 400)).events
    assert len(event.dedup_key) <= 200 and event.dedup_key.startswith("msg:sha256:")


def _drop(doc: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != key}


MALFORMED: list[Any] = [
    pytest.param(lambda d: _drop(d, "msgId"), id="no-msgId"),
    pytest.param(lambda d: d | {"msgId": ""}, id="empty-msgId"),
    pytest.param(lambda d: d | {"msgId": 12}, id="msgId-number"),
    pytest.param(lambda d: d | {"msgId": "a\x00b"}, id="msgId-nul"),
    pytest.param(lambda d: _drop(d, "senderStaffId"), id="no-staffId"),
    pytest.param(lambda d: d | {"senderStaffId": "x" * 65}, id="staffId-too-long"),
    pytest.param(lambda d: d | {"senderStaffId": "rep\x0001"}, id="staffId-nul"),
    pytest.param(lambda d: d | {"senderStaffId": {"id": 1}}, id="staffId-object"),
    pytest.param(lambda d: d | {"conversationType": 1}, id="conversationType-number"),
    pytest.param(lambda d: d | {"conversationType": "3"}, id="conversationType-3"),
    pytest.param(lambda d: _drop(d, "text"), id="no-text"),
    pytest.param(lambda d: d | {"text": "帮助"}, id="text-not-object"),
    pytest.param(lambda d: d | {"text": {"content": ["帮助"]}}, id="content-list"),
    pytest.param(lambda d: d | {"msgtype": 7}, id="msgtype-number"),
    pytest.param(lambda d: d | {"msgtype": "picture", "content": {}}, id="picture-no-code"),
    pytest.param(lambda d: d | {"msgtype": "picture", "content": "dl"}, id="picture-content-string"),
    pytest.param(lambda d: d | {"msgtype": "richText", "content": {"richText": []}}, id="richText-empty"),
    pytest.param(lambda d: d | {"msgtype": "richText", "content": {"richText": ["x"]}}, id="richText-part-string"),
    pytest.param(lambda d: d | {"msgtype": "richText", "content": {"richText": {}}}, id="richText-object"),
    pytest.param(lambda d: d | {"msgtype": "audio", "content": {"downloadCode": "d", "recognition": 5}}, id="rec-num"),
]


@pytest.mark.parametrize("change", MALFORMED)
def test_malformed_messages_are_400(dt: DingTalkSigner, change: Any) -> None:
    with pytest.raises(CallbackRejected) as exc:
        parse_robot(change(dt.text("staff-rep01", "帮助", NOW_MS)))
    assert exc.value.status == 400


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"[1, 2]", b'"text"', b"null", b'{"a": NaN}', b'{"a": Infinity}', b"\xff\xfe", b"[" * 100_000],
    ids=["empty", "truncated", "list", "string", "null", "nan", "infinity", "not-utf8", "nesting-bomb"],
)
def test_bodies_that_are_not_a_json_object(body: bytes) -> None:
    with pytest.raises(CallbackRejected) as exc:
        load_json(body)
    assert exc.value.status == 400


def test_strings_are_cleaned_of_nul_and_controls(dt: DingTalkSigner) -> None:
    (event,) = robot(dt.text("staff-rep01", "帮\x00助\u202e", NOW_MS)).events
    assert isinstance(event, TextMessage) and event.text == "帮助"


# ---- card taps --------------------------------------------------------------------------------------------------


def test_a_tap_is_a_card_action_on_the_card_its_out_track_id_names(dt: DingTalkSigner) -> None:
    tap = parse_card(dt.card_tap("staff-rep01", "task-12-骨科-a1b2c3", "vc:ok:abc", params={"note": "x"}))
    assert not isinstance(tap, Ignored)
    assert tap.out_track_id == "task-12-骨科-a1b2c3"
    event = tap.event
    assert isinstance(event, CardAction)
    assert (event.channel, event.sender, event.payload, event.card_ref) == (
        "dingtalk",
        "staff-rep01",
        "vc:ok:abc",
        "task-12-骨科-a1b2c3",
    )
    params = json.dumps({"key": "vc:ok:abc", "note": "x"}, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    digest = hashlib.sha256(params.encode()).hexdigest()
    assert event.dedup_key == f"tap:task-12-骨科-a1b2c3:staff-rep01:button_tap:{digest}"


def test_tap_dedup_keys_differ_by_card_user_action_and_params(dt: DingTalkSigner) -> None:
    def key(**kw: Any) -> str:
        args = {"user_id": "staff-rep01", "out_track_id": "card-1", "key": "k:1"} | kw
        params = args.pop("params", None)
        actions = args.pop("action_ids", None)
        tap = parse_card(dt.card_tap(**args, params=params, action_ids=actions))
        assert not isinstance(tap, Ignored)
        return tap.event.dedup_key

    keys = {
        key(),
        key(out_track_id="card-2"),
        key(user_id="staff-mgr01"),
        key(action_ids=["other"]),
        key(key="k:2"),
        key(params={"x": "1"}),
    }
    assert len(keys) == 6
    assert key() == key()


def test_ref_from_out_track_id() -> None:
    assert ref_from_out_track_id("queue-0123456789abcdef") == "queue-0123456789abcdef"
    assert ref_from_out_track_id("x" * 129) == ""
    assert ref_from_out_track_id("a\nb") == ""


def test_other_callback_types_are_ignored(dt: DingTalkSigner) -> None:
    assert isinstance(parse_card(dt.card_tap("staff-rep01", "c", "k") | {"type": "cardLifecycle"}), Ignored)


MALFORMED_TAPS: list[Any] = [
    pytest.param(lambda d: _drop(d, "type"), id="no-type"),
    pytest.param(lambda d: _drop(d, "outTrackId"), id="no-outTrackId"),
    pytest.param(lambda d: _drop(d, "userId"), id="no-userId"),
    pytest.param(lambda d: d | {"userId": "u\x00"}, id="userId-nul"),
    pytest.param(lambda d: _drop(d, "content"), id="no-content"),
    pytest.param(lambda d: d | {"content": {"cardPrivateData": {}}}, id="content-object-not-string"),
    pytest.param(lambda d: d | {"content": "{"}, id="content-not-json"),
    pytest.param(lambda d: d | {"content": "[]"}, id="content-list"),
    pytest.param(lambda d: d | {"content": "{}"}, id="no-cardPrivateData"),
    pytest.param(lambda d: d | {"content": '{"cardPrivateData": {"actionIds": []}}'}, id="no-params"),
    pytest.param(lambda d: d | {"content": '{"cardPrivateData": {"params": {}}}'}, id="no-key"),
    pytest.param(lambda d: d | {"content": '{"cardPrivateData": {"params": {"key": 5}}}'}, id="key-number"),
    pytest.param(
        lambda d: d | {"content": '{"cardPrivateData": {"actionIds": "a", "params": {"key": "k"}}}'}, id="actions-str"
    ),
]


@pytest.mark.parametrize("change", MALFORMED_TAPS)
def test_malformed_taps_are_400(dt: DingTalkSigner, change: Any) -> None:
    with pytest.raises(CallbackRejected) as exc:
        parse_card(change(dt.card_tap("staff-rep01", "card-1", "k:1")))
    assert exc.value.status == 400
