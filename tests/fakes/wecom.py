"""A fake WeCom server API (aiohttp): gettoken, message/send and message/update_template_card under /cgi-bin/.

It checks every request against the documented limits; a breach answers the documented errcode and is appended
to ``violations`` (tests assert ``fake.violations == []``). It also plays WeCom's quieter habits: duplicate
suppression (``enable_duplicate_check``), silently dropping what exceeds 30 messages/min or 1000/h per user, single
use response codes, token expiry. Faults are injected per endpoint. ``/_fake/stats`` serves counters to other
processes; ``python -m tests.fakes.wecom --port N`` runs it standalone.

Sources, in the mirror repo wxkingstar/doc-hub-mcp, folder wecom/:
  UPD = 001-企业内部开发/002-服务端API/009-消息接收与发送/003-更新模版卡片消息.md (path/94888)
  TOKEN = 001-企业内部开发/002-服务端API/001-开发指南/003-获取access_token.md (path/91039)
The send doc (path/90236) and the global error codes (path/90313) are not in the mirror and are cited by path.
The limits are written out here again, not imported from cards/wecom.py: the fake is the oracle for that renderer.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import json
import random
import re
import secrets
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from aiohttp import BodyPartReader, web

from cards.wecom import strip_dedup_tag

# ---- documented limits ----------------------------------------------------------------------------------------

TEXT_MAX_BYTES = 2048  # 90236 text.content "最长不超过2048个字节"
MARKDOWN_MAX_BYTES = 2048  # 90236 markdown.content "最长不超过2048个字节，必须是utf8编码"
MAX_TOUSER = 1000  # 90236 touser "最多支持1000个"; UPD userids "最多支持1000个"
DUP_DEFAULT_SECONDS = 1800  # 90236 duplicate_check_interval "默认1800s，最大不超过4小时"
DUP_MAX_SECONDS = 4 * 3600
TASK_ID_RE = re.compile(r"[0-9A-Za-z_\-@]{1,128}")  # 90236 task_id "只能由数字、字母和“_-@”组成，最长128字节"
RESPONSE_CODE_TTL = 72 * 3600  # UPD "response_code的有效期是72小时" and "一个code只能调用一次该接口"
TOKEN_LIFETIME = 7200  # TOKEN "正常情况下为7200秒"
PER_USER_PER_MINUTE = 30  # 90236 "每应用对同一个成员不可超过30次/分钟，1000次/小时，超过部分会被丢弃不下发"
PER_USER_PER_HOUR = 1000
# 90313 errcode 40003: "长度1~64字符，由英文字母、数字、中划线、下划线以及点号构成".
USERID_RE = re.compile(r"[A-Za-z0-9_.@\-]{1,64}")

# UPD field tables ("建议不超过N个字" = characters, "字节" = bytes).
TITLE_CHARS = 36  # main_title.title (vote_interaction: 16)
TITLE_DESC_CHARS = 44  # main_title.desc (vote/multiple_interaction: 160)
SUB_TITLE_CHARS = 160  # sub_title_text
SOURCE_DESC_CHARS = 20  # source.desc
MAX_HORIZONTAL = 6  # horizontal_content_list "列表长度不超过6"
KEYNAME_CHARS = 5  # horizontal_content_list.keyname
VALUE_CHARS = 30  # horizontal_content_list.value
MAX_BUTTONS = 6  # button_list "列表长度不超过6"
BUTTON_TEXT_CHARS = 10  # button_list.text, submit_button.text
KEY_BYTES = 1024  # button_list.key, question_key, submit_button.key "最长支持1024字节"
OPTION_ID_BYTES = 128  # option_list.id "最长支持128字节，不可重复"
MAX_SELECTS = 3  # multiple_interaction select_list "最多支持 3 个选择器"
MAX_SELECT_OPTIONS = 10  # select_list.option_list "不超过 10 个，最少1个"
SELECT_OPTION_CHARS = 16  # select_list.option_list.text
MAX_VOTE_OPTIONS = 20  # checkbox.option_list "不超过 20 个，最少1个"
VOTE_OPTION_CHARS = 17  # checkbox.option_list.text

MSGTYPES = frozenset({"text", "markdown", "template_card", "image", "file", "voice", "video"})
MEDIA_MSGTYPES = frozenset({"image", "file", "voice", "video"})
CARD_TYPES = frozenset({"text_notice", "news_notice", "button_interaction", "vote_interaction", "multiple_interaction"})
# 90236 response_code: returned for these card types (and for notice cards carrying action_menu).
INTERACTIVE = frozenset({"button_interaction", "vote_interaction", "multiple_interaction"})
SEND_KEYS = frozenset(
    {"touser", "toparty", "totag", "msgtype", "agentid", "safe", "enable_id_trans"}
    | {"enable_duplicate_check", "duplicate_check_interval"}
)
UPDATE_KEYS = frozenset({"userids", "partyids", "tagids", "atall", "agentid", "response_code", "enable_id_trans"})

ENDPOINTS = ("gettoken", "message/send", "message/update_template_card", "media/get", "media/upload")
# MEDIA = path/90253 上传临时素材 (and /90254 获取临时素材): "media_id仅三天内有效"; "所有文件size必须大于5个字节";
# image 10MB JPG/PNG, voice 2MB AMR, video 10MB MP4, file 20MB; multipart field "media" with filename.
MEDIA_TTL = 3 * 24 * 3600
MEDIA_MIN_BYTES = 6
MB = 1024 * 1024
MEDIA_LIMITS = {"image": 10 * MB, "voice": 2 * MB, "video": 10 * MB, "file": 20 * MB}
# Global error codes (90313); 60140 for a bad response_code is from ../shared/docs/protocols.md (not in the 2021
# crawl of 90313 we could read).
ERRMSG = {
    -1: "system busy",
    40001: "invalid credential",
    40004: "invalid media type",
    40005: "invalid file type",
    40006: "invalid file size",
    40007: "invalid media_id",
    40009: "invalid image size",
    40010: "invalid voice size",
    40011: "invalid video size",
    40008: "invalid message type",
    40013: "invalid corpid",
    40014: "invalid access_token",
    40031: "invalid userid list",
    40032: "invalid userid list size",
    40056: "invalid agentid",
    40058: "invalid parameter",
    41001: "access_token missing",
    41002: "corpid missing",
    41004: "corpsecret missing",
    41011: "agentid missing",
    41013: "media_id missing",
    42001: "access_token expired",
    42014: "taskid has existed or empty or exceed max len",
    42018: "invalid button key",
    42019: "button key missing",
    42020: "button name missing",
    44001: "empty media data",
    44004: "empty content",
    45002: "content size out of limit",
    45009: "api freq out of limit",
    45033: "api concurrent out of limit",
    60140: "invalid response_code",
    81013: "user & party & tag all invalid",
    82001: "all touser/toparty/totag empty",
    301002: "agentid does not match the access_token's app",
}

Fault = int | str
Problem = tuple[int, str]


# ---- records --------------------------------------------------------------------------------------------------


@dataclass
class Media:
    """A temporary media the fake holds: one a member sent (``register_media``) or one the app uploaded."""

    media_id: str
    data: bytes
    filename: str
    content_type: str
    created_at: float
    source: str  # "member" | "upload"
    media_type: str = ""


@dataclass
class Delivered:
    """A message that reached ``touser`` (after invalid users, duplicates and rate drops were taken out)."""

    touser: list[str]
    msgtype: str
    body: dict[str, Any]
    at: float
    msgid: str


@dataclass
class Update:
    """An accepted message/update_template_card call."""

    userids: list[str]
    response_code: str
    task_id: str
    body: dict[str, Any]
    at: float


@dataclass
class Request:
    """Any request to /cgi-bin/, faulted or not; ``body`` is the parsed JSON (None for GET or unparsable)."""

    endpoint: str
    query: dict[str, str]
    body: Any
    at: float


@dataclass
class _Code:
    task_id: str
    userid: str | None
    issued_at: float
    source: str
    spent: bool = False


@dataclass
class _Sent:
    at: float
    msgid: str
    flagged: bool
    task_id: str | None


@dataclass
class _RandomFaults:
    rate: float
    faults: list[Fault]
    rng: random.Random


# ---- stateless validation -------------------------------------------------------------------------------------


def validate_send(body: Any) -> list[str]:
    """Every way ``body`` breaks the documented message/send rules, as "errcode: reason" strings.

    Stateless: the app's agentid and task_id reuse are checked by the server, not here.
    """
    return [f"{code}: {reason}" for code, reason in _send_problems(body)]


def validate_update(body: Any) -> list[str]:
    """Every way ``body`` breaks the documented message/update_template_card rules (stateless)."""
    return [f"{code}: {reason}" for code, reason in _update_problems(body)]


def _send_problems(body: Any) -> list[Problem]:
    if not isinstance(body, dict):
        return [(40058, "body is not a JSON object")]
    p: list[Problem] = []
    touser = body.get("touser")
    if "toparty" in body or "totag" in body:
        p.append((40058, "the fake supports touser only"))
    if not isinstance(touser, str) or not touser.strip("|"):
        p.append((82001, "touser is missing, empty or not a 'a|b' string"))
    else:
        ids = touser.split("|")
        if len(ids) > MAX_TOUSER:
            p.append((40032, f"{len(ids)} users in touser, at most {MAX_TOUSER}"))
        if "" in ids or "@all" in ids:
            p.append((40031, "touser has an empty userid or @all"))
    p += _agentid_problems(body)
    msgtype = body.get("msgtype")
    if msgtype not in MSGTYPES:
        p.append((40008, f"msgtype {msgtype!r} not in {sorted(MSGTYPES)}"))
    else:
        extra = set(body) - SEND_KEYS - {msgtype}
        if extra:
            p.append((40058, f"unexpected fields {sorted(extra)}"))
        content = body.get(msgtype)
        if msgtype == "template_card":
            p += _card_problems(content, update=False)
        elif msgtype in MEDIA_MSGTYPES:
            # 90236: {"image": {"media_id": "MEDIA_ID"}}, the same shape for file, voice and video.
            if not isinstance(content, dict) or not isinstance(content.get("media_id"), str) or not content["media_id"]:
                p.append((40007, f"{msgtype}.media_id missing or not a string"))
        else:
            limit = TEXT_MAX_BYTES if msgtype == "text" else MARKDOWN_MAX_BYTES
            p += _content_problems(content, msgtype, limit)
    check, interval = body.get("enable_duplicate_check", 0), body.get("duplicate_check_interval", DUP_DEFAULT_SECONDS)
    if check not in (0, 1) or isinstance(check, bool):
        p.append((40058, f"enable_duplicate_check {check!r} must be 0 or 1"))
    if not _is_int(interval) or not 0 < interval <= DUP_MAX_SECONDS:
        p.append((40058, f"duplicate_check_interval {interval!r} must be 1..{DUP_MAX_SECONDS}"))
    return p


def _update_problems(body: Any) -> list[Problem]:
    if not isinstance(body, dict):
        return [(40058, "body is not a JSON object")]
    p: list[Problem] = []
    userids = body.get("userids")
    if not isinstance(userids, list) or not userids:
        p.append((82001, "userids missing or empty (the fake supports userids only)"))
    elif not all(isinstance(u, str) and u for u in userids):
        p.append((40031, "userids must be non-empty strings"))
    elif len(userids) > MAX_TOUSER:
        p.append((40032, f"{len(userids)} userids, at most {MAX_TOUSER}"))
    p += _agentid_problems(body)
    if not isinstance(body.get("response_code"), str) or not body["response_code"]:
        p.append((40058, "response_code missing"))
    has_button, has_card = "button" in body, "template_card" in body
    extra = set(body) - UPDATE_KEYS - {"button", "template_card"}
    if extra:
        p.append((40058, f"unexpected fields {sorted(extra)}"))
    if has_button == has_card:
        p.append((40058, "give exactly one of button.replace_name and template_card"))
    elif has_button:
        name = body["button"].get("replace_name") if isinstance(body["button"], dict) else None
        if not isinstance(name, str) or not name:
            p.append((40058, "button.replace_name missing"))
    else:
        p += _card_problems(body["template_card"], update=True)
    return p


def _agentid_problems(body: dict[str, Any]) -> list[Problem]:
    if "agentid" not in body:
        return [(41011, "agentid missing")]
    if not _is_int(body["agentid"]):
        return [(40056, f"agentid {body['agentid']!r} is not an integer")]
    return []


def _content_problems(content: Any, msgtype: str, limit: int) -> list[Problem]:
    if not isinstance(content, dict) or not isinstance(content.get("content"), str):
        return [(40058, f"{msgtype}.content missing")]
    text = content["content"]
    if not text.strip():
        return [(44004, f"{msgtype}.content is empty")]
    size = len(text.encode())
    return [(45002, f"{msgtype}.content is {size} bytes, limit {limit}")] if size > limit else []


def _card_problems(tc: Any, *, update: bool) -> list[Problem]:
    if not isinstance(tc, dict):
        return [(40058, "template_card is not an object")]
    card_type = tc.get("card_type")
    if card_type not in CARD_TYPES:
        return [(40058, f"card_type {card_type!r}")]
    p: list[Problem] = []
    task_id = tc.get("task_id")
    if task_id is None:
        if card_type in INTERACTIVE and not update:
            p.append((42014, "task_id missing"))
    elif not isinstance(task_id, str) or not TASK_ID_RE.fullmatch(task_id):
        p.append((42014, f"task_id {task_id!r} is not 1..128 of [0-9A-Za-z_-@]"))
    vote = card_type == "vote_interaction"
    long_desc = card_type in ("vote_interaction", "multiple_interaction")
    title = tc.get("main_title")
    if title is None:
        if card_type != "text_notice":
            p.append((40058, "main_title missing"))
    elif not isinstance(title, dict):
        p.append((40058, "main_title is not an object"))
    else:
        p += _text(title.get("title"), "main_title.title", chars=16 if vote else TITLE_CHARS, required=True)
        p += _text(title.get("desc"), "main_title.desc", chars=160 if long_desc else TITLE_DESC_CHARS)
    source = tc.get("source")
    if source is not None:
        if not isinstance(source, dict):
            p.append((40058, "source is not an object"))
        else:
            p += _text(source.get("desc"), "source.desc", chars=SOURCE_DESC_CHARS)
            if source.get("desc_color", 0) not in (0, 1, 2, 3):
                p.append((40058, f"source.desc_color {source.get('desc_color')!r} not in 0..3"))
    p += _text(tc.get("sub_title_text"), "sub_title_text", chars=SUB_TITLE_CHARS)
    p += _text(tc.get("replace_text"), "replace_text")
    p += _horizontal_problems(tc.get("horizontal_content_list"))
    if card_type == "button_interaction":
        p += _button_list_problems(tc.get("button_list"))
    elif card_type == "multiple_interaction":
        p += _select_list_problems(tc.get("select_list"))
        p += _submit_problems(tc.get("submit_button"))
    elif vote:
        p += _checkbox_problems(tc.get("checkbox"))
        p += _submit_problems(tc.get("submit_button"))
    elif not isinstance(tc.get("card_action"), dict):
        p.append((40058, f"{card_type} needs card_action"))
    return p


def _horizontal_problems(items: Any) -> list[Problem]:
    if items is None:
        return []
    if not isinstance(items, list) or len(items) > MAX_HORIZONTAL:
        return [(40058, f"horizontal_content_list must be a list of at most {MAX_HORIZONTAL}")]
    p: list[Problem] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            p.append((40058, f"horizontal_content_list[{i}] is not an object"))
            continue
        if item.get("type", 0) != 0:
            p.append((40058, f"horizontal_content_list[{i}].type: the fake knows plain items only"))
        p += _text(item.get("keyname"), f"horizontal_content_list[{i}].keyname", chars=KEYNAME_CHARS, required=True)
        p += _text(item.get("value"), f"horizontal_content_list[{i}].value", chars=VALUE_CHARS)
    return p


def _button_list_problems(buttons: Any) -> list[Problem]:
    if not isinstance(buttons, list):
        return [(40058, "button_interaction needs button_list")]
    if len(buttons) > MAX_BUTTONS:
        return [(40058, f"{len(buttons)} buttons, at most {MAX_BUTTONS}")]
    p: list[Problem] = []
    keys: set[str] = set()
    for i, b in enumerate(buttons):
        if not isinstance(b, dict):
            p.append((40058, f"button_list[{i}] is not an object"))
            continue
        if b.get("type", 0) != 0:
            p.append((40058, f"button_list[{i}].type: the fake knows callback buttons only"))
        if not isinstance(b.get("text"), str) or not b["text"]:
            p.append((42020, f"button_list[{i}].text missing"))
        else:
            p += _text(b["text"], f"button_list[{i}].text", chars=BUTTON_TEXT_CHARS)
        style = b.get("style", 1)
        if not _is_int(style) or not 1 <= style <= 4:
            p.append((40058, f"button_list[{i}].style {style!r} not in 1..4"))
        p += _key_problems(b.get("key"), f"button_list[{i}].key", keys)
    return p


def _select_list_problems(selects: Any) -> list[Problem]:
    if not isinstance(selects, list) or not 1 <= len(selects) <= MAX_SELECTS:
        return [(40058, f"select_list must hold 1..{MAX_SELECTS} selectors")]
    p: list[Problem] = []
    keys: set[str] = set()
    for i, s in enumerate(selects):
        if not isinstance(s, dict):
            p.append((40058, f"select_list[{i}] is not an object"))
            continue
        p += _key_problems(s.get("question_key"), f"select_list[{i}].question_key", keys)
        p += _text(s.get("title"), f"select_list[{i}].title")
        p += _options_problems(s.get("option_list"), f"select_list[{i}]", MAX_SELECT_OPTIONS, SELECT_OPTION_CHARS)
    return p


def _checkbox_problems(box: Any) -> list[Problem]:
    if not isinstance(box, dict):
        return [(40058, "vote_interaction needs checkbox")]
    p = _key_problems(box.get("question_key"), "checkbox.question_key", set())
    if box.get("mode", 0) not in (0, 1):
        p.append((40058, "checkbox.mode must be 0 or 1"))
    return p + _options_problems(box.get("option_list"), "checkbox", MAX_VOTE_OPTIONS, VOTE_OPTION_CHARS)


def _options_problems(options: Any, where: str, most: int, chars: int) -> list[Problem]:
    if not isinstance(options, list) or not 1 <= len(options) <= most:
        return [(40058, f"{where}.option_list must hold 1..{most} options")]
    p: list[Problem] = []
    ids: set[str] = set()
    for j, o in enumerate(options):
        if not isinstance(o, dict):
            p.append((40058, f"{where}.option_list[{j}] is not an object"))
            continue
        oid = o.get("id")
        if not isinstance(oid, str) or not oid or len(oid.encode()) > OPTION_ID_BYTES or oid in ids:
            p.append((40058, f"{where}.option_list[{j}].id must be unique, 1..{OPTION_ID_BYTES} bytes"))
        else:
            ids.add(oid)
        p += _text(o.get("text"), f"{where}.option_list[{j}].text", chars=chars, required=True)
    return p


def _submit_problems(button: Any) -> list[Problem]:
    if button is None:
        return []
    if not isinstance(button, dict):
        return [(40058, "submit_button is not an object")]
    p = _text(button.get("text"), "submit_button.text", chars=BUTTON_TEXT_CHARS, required=True)
    return p + _key_problems(button.get("key"), "submit_button.key", set())


def _key_problems(key: Any, where: str, seen: set[str]) -> list[Problem]:
    if not isinstance(key, str) or not key:
        return [(42019, f"{where} missing")]
    if len(key.encode()) > KEY_BYTES:
        return [(42018, f"{where} is {len(key.encode())} bytes, limit {KEY_BYTES}")]
    if key in seen:
        return [(42018, f"{where} {key!r} repeats another key")]
    seen.add(key)
    return []


def _text(value: Any, where: str, *, chars: int | None = None, required: bool = False) -> list[Problem]:
    if value is None:
        return [(40058, f"{where} missing")] if required else []
    if not isinstance(value, str):
        return [(40058, f"{where} is not a string")]
    if required and not value.strip():
        return [(40058, f"{where} is empty")]
    if chars is not None and len(value) > chars:
        return [(45002, f"{where} is {len(value)} characters, limit {chars}")]
    return []


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# ---- the server -----------------------------------------------------------------------------------------------


class FakeWeCom:
    """State of one fake corp + app; ``app()`` serves it. Time comes from ``now`` (monotonic seconds)."""

    def __init__(
        self,
        *,
        corp_id: str = "wwfakecorp0001",
        secret: str = "fake-app-secret",
        agent_id: int = 1000002,
        known_users: Iterable[str] | None = None,
        now: Callable[[], float] = time.monotonic,
        timeout_seconds: float = 30.0,
        token_lifetime: int = TOKEN_LIFETIME,
        dedupe_against_unflagged: bool = True,
    ) -> None:
        self.corp_id = corp_id
        self.secret = secret
        self.agent_id = agent_id
        # None: every well-formed userid exists. Otherwise unknown ones are reported in invaliduser.
        self.known_users = None if known_users is None else {u.lower() for u in known_users}
        self.now = now
        # How long a "timeout" fault holds the request (longer than the client's timeout); cut short on shutdown.
        self.timeout_seconds = timeout_seconds
        self.token_lifetime = token_lifetime
        # WeCom's doc says a flagged message is dropped if "同样内容" arrived within the interval; whether the
        # earlier copy had to carry the flag too is not stated. True: any earlier identical message counts.
        self.dedupe_against_unflagged = dedupe_against_unflagged

        self.requests: list[Request] = []
        self.delivered: list[Delivered] = []
        self.updates: list[Update] = []
        self.violations: list[str] = []
        self.rejected_codes: list[str] = []
        self.suppressed_duplicates = 0
        self.silently_dropped = 0
        self.dropped_to: Counter[str] = Counter()
        self.token_fetches = 0
        self.faults_served: Counter[str] = Counter()

        self._tokens: dict[str, float] = {}
        self._expired: set[str] = set()
        self._codes: dict[str, _Code] = {}
        self._task_ids: set[str] = set()
        self._recent: dict[str, _Sent] = {}
        self._stamps: defaultdict[str, deque[float]] = defaultdict(deque)
        self._cards: dict[tuple[str, str], dict[str, Any]] = {}
        self._next_faults: defaultdict[str, deque[Fault]] = defaultdict(deque)
        self._random_faults: dict[str, _RandomFaults] = {}
        self._release = asyncio.Event()
        self.media: dict[str, Media] = {}
        self.uploads: list[Media] = []

    # ---- wiring ----------------------------------------------------------------------------------------------

    def app(self) -> web.Application:
        """An aiohttp app serving this fake: /cgi-bin/... plus /_fake/... for stats and control."""
        # Large enough for media/upload's biggest file (20 MB) and then some, so the limits are WeCom's answers.
        app = web.Application(client_max_size=64 * MB)
        app.router.add_get("/cgi-bin/gettoken", self._gettoken)
        app.router.add_post("/cgi-bin/message/send", self._send)
        app.router.add_post("/cgi-bin/message/update_template_card", self._update)
        app.router.add_get("/cgi-bin/media/get", self._media_get)
        app.router.add_post("/cgi-bin/media/upload", self._media_upload)
        app.router.add_get("/_fake/stats", self._stats)
        app.router.add_get("/_fake/delivered", self._delivered)
        app.router.add_post("/_fake/control", self._control)
        app.on_startup.append(self._on_startup)
        app.on_shutdown.append(self._on_shutdown)
        return app

    async def _on_startup(self, app: web.Application) -> None:
        self._release = asyncio.Event()

    async def _on_shutdown(self, app: web.Application) -> None:
        self.release_timeouts()

    def release_timeouts(self) -> None:
        """End every request held by a "timeout" fault now."""
        self._release.set()

    # ---- test controls ---------------------------------------------------------------------------------------

    def expire_tokens(self) -> None:
        """Every token issued so far answers 42001 from now on."""
        self._expired.update(self._tokens)
        self._tokens.clear()

    def fail_next(self, endpoint: str, *faults: Fault) -> None:
        """The next calls to ``endpoint`` fail, one fault each, in order.

        A fault is an errcode (-1, 45009, 42001, …), an HTTP status (100-599) or "timeout" (the request is held
        ``timeout_seconds``, then answers -1). Faulted calls deliver nothing.
        """
        self._next_faults[_endpoint(endpoint)].extend(_check_faults(faults))

    def fail_randomly(self, endpoint: str, rate: float, faults: list[Fault], seed: int) -> None:
        """Each call to ``endpoint`` fails with probability ``rate`` with a fault drawn from ``faults``."""
        if not 0 <= rate <= 1 or not faults:
            raise ValueError("rate must be in [0, 1] and faults non-empty")
        self._random_faults[_endpoint(endpoint)] = _RandomFaults(rate, _check_faults(faults), random.Random(seed))

    def stop_failing(self) -> None:
        """Drop every pending and random fault."""
        self._next_faults.clear()
        self._random_faults.clear()

    def register_media(self, data: bytes, filename: str = "photo.jpg", content_type: str = "image/jpeg") -> str:
        """A media a member sent (its MediaId goes in the callback): media/get serves it for 3 days."""
        media_id = f"MEDIA_{secrets.token_hex(12)}"
        self.media[media_id] = Media(media_id, data, filename, content_type, self.now(), "member")
        return media_id

    def issue_response_code(self, task_id: str, userid: str) -> str:
        """A fresh response_code for ``task_id``, like the one a template_card_event callback carries."""
        return self._issue(task_id, userid, "tap")

    # ---- queries ---------------------------------------------------------------------------------------------

    def messages_to(self, userid: str) -> list[Delivered]:
        """Messages delivered to ``userid`` (case-insensitive), oldest first."""
        uid = userid.lower()
        return [d for d in self.delivered if uid in (u.lower() for u in d.touser)]

    def texts_to(self, userid: str) -> list[str]:
        """Contents of the text messages delivered to ``userid``."""
        # As the WeCom client shows them: the invisible dedup tag (cards/wecom.py) is not part of what people read.
        return [strip_dedup_tag(d.body["text"]["content"]) for d in self.messages_to(userid) if d.msgtype == "text"]

    def markdowns_to(self, userid: str) -> list[str]:
        """Contents of the markdown messages delivered to ``userid``."""
        return [d.body["markdown"]["content"] for d in self.messages_to(userid) if d.msgtype == "markdown"]

    def cards_to(self, userid: str) -> list[dict[str, Any]]:
        """The template_card objects delivered to ``userid`` (as sent, before any update)."""
        return [d.body["template_card"] for d in self.messages_to(userid) if d.msgtype == "template_card"]

    def card_state(self, task_id: str, userid: str) -> dict[str, Any] | None:
        """The card ``task_id`` as ``userid`` sees it now: the sent card with every update applied."""
        return self._cards.get((task_id, userid.lower()))

    def stats(self) -> dict[str, Any]:
        """Counters for assertions from another process."""
        per_user: Counter[str] = Counter()
        for d in self.delivered:
            per_user.update(u.lower() for u in d.touser)
        return {
            "delivered": dict(per_user),
            "delivered_messages": len(self.delivered),
            "updates": len(self.updates),
            "violations": list(self.violations),
            "rejected_codes": len(self.rejected_codes),
            "suppressed_duplicates": self.suppressed_duplicates,
            "silently_dropped": self.silently_dropped,
            "token_fetches": self.token_fetches,
            "requests": dict(Counter(r.endpoint for r in self.requests)),
            "faults": dict(self.faults_served),
        }

    # ---- handlers --------------------------------------------------------------------------------------------

    async def _gettoken(self, request: web.Request) -> web.Response:
        self._record("gettoken", request, None)
        fault = await self._fault("gettoken")
        if fault is not None:
            return fault
        corpid, secret = request.query.get("corpid"), request.query.get("corpsecret")
        if not corpid:
            return _err(41002)
        if not secret:
            return _err(41004)
        if corpid != self.corp_id:
            return _err(40013)
        if secret != self.secret:
            return _err(40001)
        token = secrets.token_urlsafe(32)
        self._tokens[token] = self.now()
        self.token_fetches += 1
        return web.json_response(
            {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": self.token_lifetime}
        )

    async def _send(self, request: web.Request) -> web.Response:
        body = await _read_json(request)
        self._record("message/send", request, body)
        fault = await self._fault("message/send")
        if fault is not None:
            return fault
        token_error = self._token_error(request)
        if token_error is not None:
            return _err(token_error)
        problems = _send_problems(body)
        if not problems and body["agentid"] != self.agent_id:
            problems = [(301002, f"agentid {body['agentid']} is not this app ({self.agent_id})")]
        if problems:
            return self._reject("message/send", problems)
        if body["msgtype"] in MEDIA_MSGTYPES:
            media_id = body[body["msgtype"]]["media_id"]
            # A media id the fake handed out must still be alive (3 days); other ids (tests that send one a
            # member's callback named, without registering it) are taken as WeCom's own.
            if media_id in self.media and self._live_media(media_id) is None:
                return _err(40007)
        return web.json_response(self._accept_send(body))

    async def _update(self, request: web.Request) -> web.Response:
        body = await _read_json(request)
        self._record("message/update_template_card", request, body)
        fault = await self._fault("message/update_template_card")
        if fault is not None:
            return fault
        token_error = self._token_error(request)
        if token_error is not None:
            return _err(token_error)
        problems = _update_problems(body)
        if not problems and body["agentid"] != self.agent_id:
            problems = [(301002, f"agentid {body['agentid']} is not this app ({self.agent_id})")]
        if problems:
            return self._reject("message/update_template_card", problems)
        code = self._codes.get(body["response_code"])
        if code is None or code.spent or self.now() - code.issued_at >= RESPONSE_CODE_TTL:
            # Not a violation: a sender may legitimately retry a code whose first use it did not see answered.
            self.rejected_codes.append(body["response_code"])
            return _err(60140)
        valid, invalid = self._split_users(body["userids"])
        if not valid:
            return _err(81013, invaliduser=[u.lower() for u in invalid])
        code.spent = True
        now = self.now()
        self.updates.append(Update(valid, body["response_code"], code.task_id, body, now))
        for u in valid:
            key = (code.task_id, u.lower())
            if "button" in body:
                card = copy.deepcopy(self._cards.get(key, {}))
                card["replace_text"] = body["button"]["replace_name"]
            else:
                card = {**copy.deepcopy(body["template_card"]), "task_id": code.task_id}
            self._cards[key] = card
        # The update doc answers invaliduser as a list (message/send answers "a|b").
        return web.json_response({"errcode": 0, "errmsg": "ok", "invaliduser": [u.lower() for u in invalid]})

    async def _media_get(self, request: web.Request) -> web.StreamResponse:
        """path/90254: the file itself (Content-Type, Content-disposition with its name), or a JSON error."""
        self._record("media/get", request, None)
        fault = await self._fault("media/get")
        if fault is not None:
            return fault
        token_error = self._token_error(request)
        if token_error is not None:
            return _err(token_error)
        media_id = request.query.get("media_id", "")
        if not media_id:
            return _err(41013)
        media = self._live_media(media_id)
        if media is None:
            # Not a violation: a media id expires while its message waits, and asking is how one finds out.
            return _err(40007)
        disposition = f'attachment; filename="{media.filename}"'
        return web.Response(
            body=media.data, headers={"Content-Type": media.content_type, "Content-disposition": disposition}
        )

    async def _media_upload(self, request: web.Request) -> web.Response:
        """path/90253: multipart/form-data, field "media" (filename, content type); the limits per type."""
        self._record("media/upload", request, None)
        fault = await self._fault("media/upload")
        if fault is not None:
            return fault
        token_error = self._token_error(request)
        if token_error is not None:
            return _err(token_error)
        media_type = request.query.get("type", "")
        if media_type not in MEDIA_LIMITS:
            return self._reject("media/upload", [(40004, f"type {media_type!r}")])
        if not request.content_type.startswith("multipart/form-data"):
            return self._reject("media/upload", [(40058, f"Content-Type {request.content_type!r} is not multipart")])
        part_name = filename = content_type = ""
        data = b""
        reader = await request.multipart()
        async for part in reader:
            if isinstance(part, BodyPartReader) and part.name == "media":
                part_name = "media"
                filename = part.filename or ""
                content_type = part.headers.get("Content-Type", "")
                data = bytes(await part.read())
        problems = _upload_problems(media_type, part_name, filename, content_type, data)
        if problems:
            return self._reject("media/upload", problems)
        media = Media(secrets.token_urlsafe(32), data, filename, content_type, self.now(), "upload", media_type)
        self.media[media.media_id] = media
        self.uploads.append(media)
        return web.json_response(
            {
                "errcode": 0,
                "errmsg": "ok",
                "type": media_type,
                "media_id": media.media_id,
                "created_at": str(int(media.created_at)),
            }
        )

    def _live_media(self, media_id: str) -> Media | None:
        media = self.media.get(media_id)
        if media is None or self.now() - media.created_at >= MEDIA_TTL:
            return None
        return media

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    async def _delivered(self, request: web.Request) -> web.Response:
        return web.json_response([asdict(d) for d in self.delivered])

    async def _control(self, request: web.Request) -> web.Response:
        """Remote controls for a fake in another process: {"op": "fail_next" | "fail_randomly" | ...}."""
        cmd = await request.json()
        op = cmd.get("op")
        if op == "fail_next":
            self.fail_next(cmd["endpoint"], *cmd["faults"])
        elif op == "fail_randomly":
            self.fail_randomly(cmd["endpoint"], float(cmd["rate"]), list(cmd["faults"]), int(cmd["seed"]))
        elif op == "stop_failing":
            self.stop_failing()
        elif op == "expire_tokens":
            self.expire_tokens()
        elif op == "issue_response_code":
            return web.json_response({"response_code": self.issue_response_code(cmd["task_id"], cmd["userid"])})
        else:
            raise web.HTTPBadRequest(text=f"unknown op {op!r}")
        return web.json_response({"ok": True})

    # ---- internals -------------------------------------------------------------------------------------------

    def _accept_send(self, body: dict[str, Any]) -> dict[str, Any]:
        now = self.now()
        valid, invalid = self._split_users(body["touser"].split("|"))
        invaliduser = "|".join(u.lower() for u in invalid)
        if not valid:
            return {"errcode": 81013, "errmsg": ERRMSG[81013], "invaliduser": invaliduser}
        tc: dict[str, Any] = body.get("template_card") or {}
        task_id: str | None = tc.get("task_id")
        interactive = tc.get("card_type") in INTERACTIVE
        answer: dict[str, Any] = {"errcode": 0, "errmsg": "ok", "invaliduser": invaliduser}
        answer |= {"invalidparty": "", "invalidtag": "", "unlicenseduser": ""}

        key = _dup_key(body)
        flagged = body.get("enable_duplicate_check") == 1
        prev = self._recent.get(key)
        interval = body.get("duplicate_check_interval", DUP_DEFAULT_SECONDS)
        if flagged and prev and now - prev.at < interval and (prev.flagged or self.dedupe_against_unflagged):
            # Accepted, not delivered again (checked before task_id reuse: the copy carries the same task_id).
            self.suppressed_duplicates += 1
            answer["msgid"] = prev.msgid
            if interactive and prev.task_id:
                answer["response_code"] = self._issue(prev.task_id, None, "send")
            return answer
        if task_id is not None:
            if task_id in self._task_ids:
                self.violations.append(f"message/send: 42014 task_id {task_id!r} was already used by this app")
                return {"errcode": 42014, "errmsg": ERRMSG[42014]}
            self._task_ids.add(task_id)

        msgid = secrets.token_urlsafe(24)
        self._recent[key] = _Sent(now, msgid, flagged, task_id)
        reached = [u for u in valid if self._take_rate(u, now)]
        if reached:
            self.delivered.append(Delivered(reached, body["msgtype"], body, now, msgid))
            if tc and task_id:
                for u in reached:
                    self._cards[(task_id, u.lower())] = copy.deepcopy(tc)
        answer["msgid"] = msgid
        if interactive and task_id:
            answer["response_code"] = self._issue(task_id, None, "send")
        return answer

    def _take_rate(self, userid: str, now: float) -> bool:
        """Count a delivery to ``userid``, or drop it silently past 30/min or 1000/h (90236 频率限制)."""
        stamps = self._stamps[userid.lower()]
        while stamps and now - stamps[0] >= 3600:
            stamps.popleft()
        last_minute = sum(1 for t in stamps if now - t < 60)
        if last_minute >= PER_USER_PER_MINUTE or len(stamps) >= PER_USER_PER_HOUR:
            self.silently_dropped += 1
            self.dropped_to[userid.lower()] += 1
            return False
        stamps.append(now)
        return True

    def _split_users(self, userids: list[str]) -> tuple[list[str], list[str]]:
        valid: list[str] = []
        invalid: list[str] = []
        for u in userids:
            ok = bool(USERID_RE.fullmatch(u)) and (self.known_users is None or u.lower() in self.known_users)
            (valid if ok else invalid).append(u)
        return valid, invalid

    def _issue(self, task_id: str, userid: str | None, source: str) -> str:
        code = secrets.token_urlsafe(24)
        self._codes[code] = _Code(task_id, userid, self.now(), source)
        return code

    def _token_error(self, request: web.Request) -> int | None:
        token = request.query.get("access_token")
        if not token:
            return 41001
        if token in self._expired:
            return 42001
        issued = self._tokens.get(token)
        if issued is None:
            return 40014
        if self.now() - issued >= self.token_lifetime:
            return 42001
        return None

    def _record(self, endpoint: str, request: web.Request, body: Any) -> None:
        self.requests.append(Request(endpoint, dict(request.query), None if body is _BAD else body, self.now()))

    def _reject(self, endpoint: str, problems: list[Problem]) -> web.Response:
        for code, reason in problems:
            self.violations.append(f"{endpoint}: {code} {reason}")
        code, reason = problems[0]
        return _err(code, reason)

    async def _fault(self, endpoint: str) -> web.Response | None:
        queue = self._next_faults.get(endpoint)
        fault: Fault | None = None
        if queue:
            fault = queue.popleft()
        elif endpoint in self._random_faults:
            rnd = self._random_faults[endpoint]
            if rnd.rng.random() < rnd.rate:
                fault = rnd.rng.choice(rnd.faults)
        if fault is None:
            return None
        self.faults_served[endpoint] += 1
        if fault == "timeout":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._release.wait(), self.timeout_seconds)
            return _err(-1, "held past the client timeout")
        if isinstance(fault, int) and 100 <= fault <= 599:
            return web.Response(status=fault, text="injected HTTP error")
        return _err(int(fault), "injected fault")


# ---- helpers --------------------------------------------------------------------------------------------------


def _sniff_upload(data: bytes) -> str:
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"#!AMR\n"):
        return "amr"
    if len(data) >= 12 and data[4:8] == b"ftyp":
        return "mp4"
    return ""


def _upload_problems(media_type: str, part_name: str, filename: str, content_type: str, data: bytes) -> list[Problem]:
    """MEDIA: the form-data part "media" with a filename and a content type, more than 5 bytes, the type's size
    and format."""
    if part_name != "media":
        return [(44001, 'no form-data part named "media"')]
    p: list[Problem] = []
    if not filename:
        p.append((40058, "the media part has no filename"))
    elif filename.startswith("/") or "\\" in filename or ":" in filename:
        p.append((40058, f"filename {filename!r} starts with / or holds \\ or :"))
    if not content_type:
        p.append((40058, "the media part has no Content-Type"))
    if len(data) < MEDIA_MIN_BYTES:
        p.append((40006, f"{len(data)} bytes; more than 5 needed"))
    if len(data) > MEDIA_LIMITS[media_type]:
        code = {"image": 40009, "voice": 40010, "video": 40011}.get(media_type, 40006)
        p.append((code, f"{len(data)} bytes over the {media_type} limit {MEDIA_LIMITS[media_type]}"))
    kind = _sniff_upload(data)
    wanted = {"image": ("jpg", "png"), "voice": ("amr",), "video": ("mp4",)}.get(media_type)
    if wanted is not None and kind not in wanted:
        p.append((40005, f"{media_type} must be {'/'.join(wanted)}, got {kind or 'something else'}"))
    return p


_BAD: Any = object()


async def _read_json(request: web.Request) -> Any:
    try:
        return json.loads(await request.read())
    except ValueError:
        return _BAD


def _dup_key(body: dict[str, Any]) -> str:
    content = {k: v for k, v in body.items() if k not in ("enable_duplicate_check", "duplicate_check_interval")}
    return json.dumps(content, sort_keys=True, ensure_ascii=False)


def _err(code: int, reason: str = "", **extra: Any) -> web.Response:
    msg = ERRMSG.get(code, "error") + (f", hint: {reason}" if reason else "")
    return web.json_response({"errcode": code, "errmsg": msg, **extra})


def _endpoint(name: str) -> str:
    name = name.removeprefix("/cgi-bin/").strip("/")
    if name not in ENDPOINTS:
        raise ValueError(f"unknown endpoint {name!r}; one of {ENDPOINTS}")
    return name


def _check_faults(faults: Iterable[Fault]) -> list[Fault]:
    out: list[Fault] = []
    for f in faults:
        if f != "timeout" and not _is_int(f):
            raise ValueError(f"fault {f!r}: an errcode, an HTTP status or 'timeout'")
        out.append(f)
    return out


def _parse_fault(text: str) -> Fault:
    return "timeout" if text == "timeout" else int(text)


def main(argv: list[str] | None = None) -> None:
    """Run the fake standalone (for the crash test and benchmarks)."""
    ap = argparse.ArgumentParser(prog="python -m tests.fakes.wecom", description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--corp-id", default="wwfakecorp0001")
    ap.add_argument("--secret", default="fake-app-secret")
    ap.add_argument("--agent-id", type=int, default=1000002)
    ap.add_argument("--known-users", default="", help="comma-separated userids; default: every userid exists")
    ap.add_argument("--timeout-seconds", type=float, default=30.0, help="how long a 'timeout' fault holds a call")
    ap.add_argument("--fail-rate", type=float, default=0.0, help="fraction of message/send calls to fail")
    ap.add_argument("--fail-seed", type=int, default=1)
    ap.add_argument("--faults", default="-1,45009,45033,500", help="use --faults=-1,… (a leading '-' needs '=')")
    args = ap.parse_args(argv)
    fake = FakeWeCom(
        corp_id=args.corp_id,
        secret=args.secret,
        agent_id=args.agent_id,
        known_users=[u for u in args.known_users.split(",") if u] or None,
        timeout_seconds=args.timeout_seconds,
    )
    if args.fail_rate:
        faults = [_parse_fault(f.strip()) for f in args.faults.split(",") if f.strip()]
        fake.fail_randomly("message/send", args.fail_rate, faults, args.fail_seed)
    web.run_app(fake.app(), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
