"""DingTalk callback signatures: robot messages and interactive card taps (docs/dingtalk_inbound.md).

Robot messages (HTTP mode) carry the headers ``timestamp`` (milliseconds) and ``sign`` =
base64(HMAC-SHA256(key=appSecret, msg=f"{timestamp}\\n{appSecret}")). Card taps carry
``x-ddpaas-signature-timestamp`` and ``x-ddpaas-signature`` = base64(HMAC-SHA256(key=apiSecret, msg=timestamp)),
the apiSecret the callback route was registered with. Both are checked against a replay window
(``[dingtalk] replay_window_seconds``) and compared in constant time.

Status codes: a missing header is a 401, a malformed one a 400, a timestamp outside the window or a wrong signature
a 403.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

ROBOT_TIMESTAMP = "timestamp"
ROBOT_SIGN = "sign"
CARD_TIMESTAMP = "x-ddpaas-signature-timestamp"
CARD_SIGN = "x-ddpaas-signature"
_TIMESTAMP = re.compile(r"[0-9]{1,15}")
# base64 of a 32-byte digest is 44 characters; anything much longer is not a signature.
_SIGN_MAX = 128
# Below this a card timestamp is read as seconds (the scheme's unit is not documented; robot messages use ms).
_MS_FROM = 10**11


class CallbackRejected(Exception):
    """The request is refused with ``status``; ``reason`` is for the log (never a secret, never the payload)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _digest(key: str, msg: str) -> str:
    mac = hmac.new(key.encode("utf-8"), msg.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(mac).decode("ascii")


def robot_sign(timestamp: str, app_secret: str) -> str:
    """The ``sign`` header DingTalk puts on a robot message sent at ``timestamp`` (ms, as text)."""
    return _digest(app_secret, f"{timestamp}\n{app_secret}")


def card_sign(timestamp: str, api_secret: str) -> str:
    """The ``x-ddpaas-signature`` header of a card tap sent at ``timestamp``."""
    return _digest(api_secret, timestamp)


def header(value: str | None, name: str) -> str:
    """A required header's value: 401 when missing or empty, 400 when oversized."""
    if value is None or not value.strip():
        raise CallbackRejected(401, f"header {name} missing")
    if len(value) > _SIGN_MAX:
        raise CallbackRejected(400, f"header {name} too long")
    return value.strip()


def check_timestamp(timestamp: str, now_s: float, window_s: int, *, seconds_allowed: bool = False) -> None:
    """400 unless ``timestamp`` is an integer in ms (or s when ``seconds_allowed`` and it is that small); 403 when
    it is more than ``window_s`` seconds from ``now_s`` (a window of 0 turns the check off)."""
    if not _TIMESTAMP.fullmatch(timestamp):
        raise CallbackRejected(400, "timestamp is not an integer")
    value = int(timestamp)
    sent = value if seconds_allowed and value < _MS_FROM else value / 1000
    if window_s > 0 and abs(now_s - sent) > window_s:
        raise CallbackRejected(403, "timestamp outside the replay window")


def _check(given: str, expected: str) -> None:
    if not hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("ascii")):
        raise CallbackRejected(403, "signature mismatch")


def check_robot(timestamp: str, sign: str, app_secret: str) -> None:
    """403 unless ``sign`` is the robot signature of ``timestamp`` (constant time)."""
    _check(sign, robot_sign(timestamp, app_secret))


def check_card(timestamp: str, sign: str, api_secret: str) -> None:
    """403 unless ``sign`` is the card callback signature of ``timestamp`` (constant time)."""
    if not api_secret:
        raise CallbackRejected(403, "no card_api_secret configured")
    _check(sign, card_sign(timestamp, api_secret))
