"""The two DingTalk signature schemes against an independent implementation, and what each refusal is."""

from __future__ import annotations

import pytest

from bot.channels.dingtalk import sign
from bot.channels.dingtalk.sign import CallbackRejected
from tests.fakes.dingtalk_callbacks import card_signature, robot_signature

SECRET = "dt-app-secret-0123456789abcdefghij"
CARD_SECRET = "dt-card-secret-0123456789abcdefghi"
NOW_MS = 1_795_312_800_000
NOW_S = NOW_MS / 1000


def test_robot_signature_matches_the_documented_scheme() -> None:
    ts = str(NOW_MS)
    assert sign.robot_sign(ts, SECRET) == robot_signature(ts, SECRET)
    # base64 of a SHA-256 digest, not URL-encoded (robot callbacks, unlike the webhook robot's query string).
    assert len(sign.robot_sign(ts, SECRET)) == 44
    sign.check_robot(ts, robot_signature(ts, SECRET), SECRET)


def test_a_known_vector() -> None:
    # printf '1700000000000\nsecret' | openssl dgst -sha256 -hmac secret -binary | base64 (and without "\nsecret").
    assert sign.robot_sign("1700000000000", "secret") == "OuzzJR5+xZ4/EYwqtNt6sMYZQMTa/HEGvc9miJe7XzY="
    assert sign.card_sign("1700000000000", "secret") == "T+LOEv1r7F4GSLI7+/8Vi6X8GLOiFLTCBzFGcUSKleE="


def test_card_signature_is_over_the_timestamp_alone() -> None:
    ts = str(NOW_MS)
    sign.check_card(ts, card_signature(ts, CARD_SECRET), CARD_SECRET)
    with pytest.raises(CallbackRejected) as exc:
        # A robot signature is no card signature, even with the same secret.
        sign.check_card(ts, robot_signature(ts, CARD_SECRET), CARD_SECRET)
    assert exc.value.status == 403


@pytest.mark.parametrize(
    "given",
    [
        pytest.param(lambda ts: robot_signature(ts, "another-secret-0123456789abcdefgh"), id="other-secret"),
        pytest.param(lambda ts: robot_signature(str(int(ts) + 1), SECRET), id="other-timestamp"),
        pytest.param(lambda ts: robot_signature(ts, SECRET)[:-2], id="truncated"),
        pytest.param(lambda ts: robot_signature(ts, SECRET).lower(), id="case-changed"),
        pytest.param(lambda ts: "", id="empty"),
        pytest.param(lambda ts: "签名" * 10, id="non-ascii"),
        pytest.param(lambda ts: "\x00" * 44, id="nul-bytes"),
        pytest.param(lambda ts: "\ud800", id="lone-surrogate"),
    ],
)
def test_a_wrong_robot_signature_is_a_403(given: object) -> None:
    ts = str(NOW_MS)
    with pytest.raises(CallbackRejected) as exc:
        sign.check_robot(ts, given(ts), SECRET)  # type: ignore[operator]
    assert exc.value.status == 403


def test_no_card_secret_refuses_every_tap() -> None:
    with pytest.raises(CallbackRejected) as exc:
        sign.check_card("1", card_signature("1", ""), "")
    assert exc.value.status == 403


@pytest.mark.parametrize(
    ("value", "status"),
    [(None, 401), ("", 401), ("   ", 401), ("x" * 129, 400)],
)
def test_missing_or_oversized_headers(value: str | None, status: int) -> None:
    with pytest.raises(CallbackRejected) as exc:
        sign.header(value, "sign")
    assert exc.value.status == status


@pytest.mark.parametrize(
    ("timestamp", "status"),
    [
        ("17x", 400),
        ("-1", 400),
        ("1.5e12", 400),
        ("1" * 16, 400),
        ("١٧٩٥٣١٢٨٠٠٠٠٠", 400),  # Arabic-Indic digits: int() would take them
        (str(NOW_MS - 3_601_000), 403),
        (str(NOW_MS + 3_601_000), 403),
        ("0", 403),
    ],
)
def test_timestamps_outside_the_window_or_malformed(timestamp: str, status: int) -> None:
    with pytest.raises(CallbackRejected) as exc:
        sign.check_timestamp(timestamp, NOW_S, 3600)
    assert exc.value.status == status


def test_timestamps_inside_the_window_pass() -> None:
    for delta in (0, -3_599_000, 3_599_000):
        sign.check_timestamp(str(NOW_MS + delta), NOW_S, 3600)
    # A window of 0 turns the check off.
    sign.check_timestamp("1", NOW_S, 0)


def test_card_timestamps_may_be_seconds() -> None:
    sign.check_timestamp(str(int(NOW_S)), NOW_S, 3600, seconds_allowed=True)
    with pytest.raises(CallbackRejected):
        sign.check_timestamp(str(int(NOW_S)), NOW_S, 3600)  # robot messages are in ms only
