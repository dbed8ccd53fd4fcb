"""A fake DingTalk OpenAPI (aiohttp): api.dingtalk.com's ``/v1.0`` routes the bot uses (oapi's would mount on the
same app), validating every request against the documented shapes.

Routes: ``POST /v1.0/oauth2/accessToken``, ``POST /v1.0/robot/oToMessages/batchSend``,
``POST /v1.0/robot/groupMessages/send``, ``POST /v1.0/card/instances/createAndDeliver``, ``PUT /v1.0/card/instances``,
``POST /v1.0/card/callbacks/register``, ``POST /v1.0/robot/messageFiles/download`` (its ``downloadUrl`` points back
at this fake: ``GET /_fake/files/<id>``); and oapi.dingtalk.com's ``GET /gettoken`` and ``POST /media/upload``
(multipart, 0646 上传媒体文件) on the same app.

A malformed request answers the documented HTTP 400 code and is appended to ``violations`` (tests assert
``fake.violations == []``). What each person received is recorded: robot messages per staff id (``texts_to``,
``markdowns_to``, ``action_cards_to``) and interactive cards with their *current* ``cardParamMap`` after updates
(``cards_to``, ``card_state``), so tests and a scenario driver can read "what person X sees".

Faults (``fail(endpoint, fault, times)``): "throttle" (403 QpsLimitForAppkeyAndApi), "invalid_token" (400
InvalidAuthentication; also ``revoke_tokens()``), "quota" (403 ApiCountLimitForOrg; ``quota_spent = True`` for every
call), "timeout" (held past the client's timeout), "5xx", "lost" (done, but answered 502), or any
``(status, code)``; ``flow_control(user, times)``
lists a user in batchSend's ``flowControlledStaffIdList`` (not delivered to them) while the others get it.

Media: ``add_file(download_code, data)`` registers what a received message's downloadCode holds. Assumption (DingTalk
documents no lifetime; its download codes are short-lived): a code expires ``DOWNLOAD_CODE_TTL`` (1 h by the fake's
clock) after it was registered, then messageFiles/download answers 400 ``resource.not.found`` as for an unknown
code; a downloadUrl serves its bytes ``DOWNLOAD_URL_TTL`` (the same) and then 403. ``sampleImageMsg`` takes an http(s)
photoURL or a media_id of media/upload, ``sampleFile`` a media_id of a *file* upload whose ``fileType`` is its
name's suffix; an unknown media_id is a violation. ``media_to(user)`` lists what a person received as media.

Sources (../shared/docs/protocols.md, DingTalk; the docs mirror apolloyyu/kb-dingtalk-open-platform, folder
docs/01-应用开发/02-4a8AMF6u2A-服务端API/): 0714 batchSend (``userIds`` "每次最多传20个", msgParam a JSON string),
0699 message types, 0783 createAndDeliver (openSpaceId ``dtv1.card//spaceType1.spaceId1;spaceType2.spaceId2_1;…``,
cardParamMap values strings "最长不超过1KB", keys ≤ 100 B), 0782 update, 0786 callback registration.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import json
import secrets
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

# ---- documented limits ----------------------------------------------------------------------------------------

MAX_USER_IDS = 20  # 0714 userIds "每次最多传20个"
PARAM_VALUE_MAX_BYTES = 1024  # 0783 cardParamMap value "最长不超过1KB"
PARAM_KEY_MAX_BYTES = 100  # 0783 cardParamMap key "最长不超过100B"
TOKEN_LIFETIME = 7200
DOWNLOAD_CODE_TTL = 3600.0  # assumption: see the module docstring
DOWNLOAD_URL_TTL = 3600.0
SPACE_PREFIX = "dtv1.card//"
MSG_KEYS: dict[str, tuple[str, ...]] = {
    "sampleText": ("content",),
    "sampleMarkdown": ("title", "text"),
    "sampleImageMsg": ("photoURL",),
    "sampleLink": ("text", "title", "picUrl", "messageUrl"),
    "sampleActionCard": ("title", "text", "singleTitle", "singleURL"),
    "sampleFile": ("mediaId", "fileName", "fileType"),
    **{
        f"sampleActionCard{n}": (
            "title",
            "text",
            *(k for i in range(1, n + 1) for k in (f"actionTitle{i}", f"actionURL{i}")),
        )
        for n in range(2, 6)
    },
}
ENDPOINTS = {
    ("POST", "/v1.0/oauth2/accessToken"): "accessToken",
    ("POST", "/v1.0/robot/oToMessages/batchSend"): "batchSend",
    ("POST", "/v1.0/robot/groupMessages/send"): "groupSend",
    ("POST", "/v1.0/card/instances/createAndDeliver"): "createAndDeliver",
    ("PUT", "/v1.0/card/instances"): "updateCard",
    ("POST", "/v1.0/card/callbacks/register"): "registerCallback",
    ("POST", "/v1.0/robot/messageFiles/download"): "download",
}
MB = 1024 * 1024
# 0646 上传媒体文件: type → (max bytes, file name suffixes).
MEDIA_TYPES: dict[str, tuple[int, tuple[str, ...]]] = {
    "image": (20 * MB, (".jpg", ".jpeg", ".gif", ".png", ".bmp")),
    "voice": (2 * MB, (".amr", ".mp3", ".wav")),
    "video": (20 * MB, (".mp4",)),
    "file": (20 * MB, (".doc", ".docx", ".xls", ".xlsx", ".ppt", ".pptx", ".zip", ".pdf", ".rar")),
}
FAULTS: dict[str, tuple[int, str]] = {
    "throttle": (403, "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi"),
    "invalid_token": (400, "InvalidAuthentication"),
    "quota": (403, "Forbidden.AccessDenied.ApiCountLimitForOrg"),
    "5xx": (500, "system.busy"),
    "ip": (403, "Forbidden.AccessDenied.IpNotInWhiteList"),
    "permission": (403, "Forbidden.AccessDenied.AccessTokenPermissionDenied"),
}

Fault = str | tuple[int, str]


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str = "") -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.message = message or code


# ---- records --------------------------------------------------------------------------------------------------


@dataclass
class Message:
    """A robot message that reached ``to`` (a staff id, or a group's openConversationId)."""

    to: str
    msg_key: str
    param: dict[str, Any]
    at: float
    process_query_key: str


@dataclass
class CardInstance:
    """An interactive card instance (one outTrackId): its data now, and who has a copy."""

    out_track_id: str
    template_id: str
    param_map: dict[str, str]
    users: list[str]
    groups: list[str]
    callback_type: str
    route_key: str
    private: dict[str, dict[str, str]] = field(default_factory=dict)
    history: list[dict[str, str]] = field(default_factory=list)
    updates: int = 0


@dataclass
class Request:
    endpoint: str
    method: str
    body: Any
    token: str | None
    at: float


# ---- shape checks (also usable on recorded bodies) --------------------------------------------------------------


def _str(body: dict[str, Any], key: str, problems: list[str], required: bool = True) -> str:
    value = body.get(key)
    if value is None:
        if required:
            problems.append(f"{key} missing")
        return ""
    if not isinstance(value, str) or (required and not value):
        problems.append(f"{key} must be a non-empty string")
        return ""
    return value


def check_msg(body: dict[str, Any], robot_code: str) -> tuple[list[str], str, dict[str, Any]]:
    """Problems of a batchSend / groupMessages body's robotCode, msgKey and msgParam; also the parsed param."""
    problems: list[str] = []
    if _str(body, "robotCode", problems) and body["robotCode"] != robot_code:
        problems.append("robotCode is not this app's robot")
    key = _str(body, "msgKey", problems)
    raw = body.get("msgParam")
    param: dict[str, Any] = {}
    if not isinstance(raw, str):
        problems.append("msgParam must be a JSON string")
    else:
        try:
            parsed = json.loads(raw)
        except ValueError:
            problems.append("msgParam is not JSON")
            parsed = None
        if isinstance(parsed, dict):
            param = parsed
        elif parsed is not None:
            problems.append("msgParam is not a JSON object")
    if key and key not in MSG_KEYS:
        problems.append(f"msgKey {key!r} unknown")
    elif key and param:
        for name in MSG_KEYS[key]:
            if name in ("picUrl",):
                continue
            if not isinstance(param.get(name), str) or not param[name]:
                problems.append(f"msgParam.{name} missing for {key}")
        for name, value in param.items():
            if name.startswith(("actionURL", "singleURL")) and not str(value).startswith(("http://", "https://")):
                problems.append(f"msgParam.{name} is not an http(s) URL")
    return problems, key, param


def validate_batch_send(body: Any, robot_code: str) -> list[str]:
    if not isinstance(body, dict):
        return ["body is not a JSON object"]
    problems, _, _ = check_msg(body, robot_code)
    users = body.get("userIds")
    if not isinstance(users, list) or not users:
        problems.append("userIds must be a non-empty list")
    else:
        if len(users) > MAX_USER_IDS:
            problems.append(f"userIds: {len(users)} > {MAX_USER_IDS}")
        if not all(isinstance(u, str) and u for u in users):
            problems.append("userIds must be non-empty strings")
        if len(set(map(str, users))) != len(users):
            problems.append("userIds repeated")
    return problems


def validate_param_map(value: Any, where: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{where} must be an object"]
    problems = []
    for key, v in value.items():
        if len(str(key).encode()) > PARAM_KEY_MAX_BYTES:
            problems.append(f"{where} key {key!r} longer than {PARAM_KEY_MAX_BYTES} B")
        if not isinstance(v, str):
            problems.append(f"{where}.{key} is not a string")
        elif len(v.encode()) > PARAM_VALUE_MAX_BYTES:
            problems.append(f"{where}.{key} longer than 1 KB ({len(v.encode())} B)")
    return problems


def parse_space_id(value: str) -> list[tuple[str, str]]:
    """(SPACE_TYPE, id) of ``dtv1.card//TYPE.id;TYPE.id…``; raises ValueError when malformed."""
    if not value.startswith(SPACE_PREFIX):
        raise ValueError("openSpaceId must start with dtv1.card//")
    spaces = []
    for part in value[len(SPACE_PREFIX) :].split(";"):
        kind, dot, ident = part.partition(".")
        if not dot or not ident or kind.upper() not in ("IM_ROBOT", "IM_GROUP", "IM_SINGLE", "ONE_BOX"):
            raise ValueError(f"bad space {part!r}")
        spaces.append((kind.upper(), ident))
    return spaces


def validate_create(body: Any, robot_code: str, templates: set[str]) -> list[str]:
    if not isinstance(body, dict):
        return ["body is not a JSON object"]
    problems: list[str] = []
    template = _str(body, "cardTemplateId", problems)
    if template and template not in templates:
        problems.append("param.templateNotExist")
    _str(body, "outTrackId", problems)
    data = body.get("cardData")
    if not isinstance(data, dict):
        problems.append("cardData missing")
    else:
        problems += validate_param_map(data.get("cardParamMap", {}), "cardData.cardParamMap")
    for user, private in (body.get("privateData") or {}).items():
        problems += validate_param_map((private or {}).get("cardParamMap", {}), f"privateData.{user}")
    ctype = body.get("callbackType")
    if ctype is not None and ctype not in ("HTTP", "STREAM"):
        problems.append("callbackType must be HTTP or STREAM")
    if ctype == "HTTP" and not body.get("callbackRouteKey"):
        problems.append("callbackRouteKey missing for an HTTP callback")
    try:
        spaces = parse_space_id(_str(body, "openSpaceId", problems) or SPACE_PREFIX)
    except ValueError as exc:
        problems.append(f"param.openSpaceIdInvalid: {exc}")
        spaces = []
    kinds = {k for k, _ in spaces}
    robot = body.get("imRobotOpenDeliverModel")
    if "IM_ROBOT" in kinds:
        if not isinstance(robot, dict) or robot.get("spaceType") != "IM_ROBOT":
            problems.append("imRobotOpenDeliverModel {spaceType: IM_ROBOT} missing")
        elif robot.get("robotCode") not in (None, robot_code):
            problems.append("imRobotOpenDeliverModel.robotCode is not this app's robot")
        if len([1 for k, _ in spaces if k == "IM_ROBOT"]) > MAX_USER_IDS:
            problems.append(f"more than {MAX_USER_IDS} IM_ROBOT spaces in one call")
    if "IM_GROUP" in kinds:
        group = body.get("imGroupOpenDeliverModel")
        if not isinstance(group, dict) or group.get("robotCode") != robot_code:
            problems.append("imGroupOpenDeliverModel.robotCode missing or not this app's robot")
    return problems


def validate_update(body: Any) -> list[str]:
    if not isinstance(body, dict):
        return ["body is not a JSON object"]
    problems: list[str] = []
    _str(body, "outTrackId", problems)
    data, private = body.get("cardData"), body.get("privateData")
    if data is None and private is None:
        problems.append("param.cardDataAndPrivateDataBothEmpty")
    if data is not None:
        if not isinstance(data, dict):
            problems.append("cardData must be an object")
        else:
            problems += validate_param_map(data.get("cardParamMap", {}), "cardData.cardParamMap")
    options = body.get("cardUpdateOptions")
    if options is not None and (
        not isinstance(options, dict) or not all(isinstance(v, bool) for v in options.values())
    ):
        problems.append("cardUpdateOptions must hold booleans")
    return problems


# ---- the fake -------------------------------------------------------------------------------------------------


class FakeDingTalk:
    def __init__(
        self,
        *,
        app_key: str,
        app_secret: str,
        robot_code: str,
        templates: tuple[str, ...] = (),
        now: Callable[[], float] = time.time,
        timeout_seconds: float = 1.0,
    ) -> None:
        self.app_key = app_key
        self.app_secret = app_secret
        self.robot_code = robot_code
        self.templates = set(templates)
        self.now = now
        self.timeout_seconds = timeout_seconds
        self.violations: list[str] = []
        self.requests: list[Request] = []
        self.messages: dict[str, list[Message]] = defaultdict(list)
        self.cards: dict[str, CardInstance] = {}
        self.callbacks: dict[str, dict[str, Any]] = {}
        self.files: dict[str, bytes] = {}
        # downloadCode → when it was registered (it expires DOWNLOAD_CODE_TTL later).
        self.file_added: dict[str, float] = {}
        # media_id → (type, file name, bytes) of oapi media/upload.
        self.uploads: dict[str, tuple[str, str, bytes]] = {}
        self._download_urls: dict[str, tuple[str, float]] = {}
        self.calls: Counter[str] = Counter()
        self.quota_spent = False
        self._tokens: dict[str, float] = {}
        self._faults: dict[str, deque[Fault]] = defaultdict(deque)
        self._flow: Counter[str] = Counter()
        self._release = asyncio.Event()
        self._base = ""

    # ---- control ------------------------------------------------------------------------------------------

    def fail(self, endpoint: str, fault: Fault, times: int = 1) -> None:
        assert endpoint in ENDPOINTS.values(), endpoint
        assert isinstance(fault, tuple) or fault in (*FAULTS, "timeout", "lost"), fault
        self._faults[endpoint].extend([fault] * times)

    def flow_control(self, user: str, times: int = 1) -> None:
        self._flow[user] += times

    def revoke_tokens(self) -> None:
        self._tokens.clear()

    def release_timeouts(self) -> None:
        self._release.set()

    def add_file(self, download_code: str, data: bytes) -> None:
        self.files[download_code] = data
        self.file_added[download_code] = self.now()

    @property
    def api_calls(self) -> int:
        """Calls DingTalk would count against the monthly quota (all but the token's)."""
        return sum(n for e, n in self.calls.items() if e not in ("accessToken", "oapi_gettoken", "file_get"))

    # ---- views ------------------------------------------------------------------------------------------------

    def received(self, user: str, msg_key: str | None = None) -> list[Message]:
        return [m for m in self.messages.get(user, []) if msg_key is None or m.msg_key == msg_key]

    def texts_to(self, user: str) -> list[str]:
        return [str(m.param["content"]) for m in self.received(user, "sampleText")]

    def markdowns_to(self, user: str) -> list[tuple[str, str]]:
        return [(str(m.param["title"]), str(m.param["text"])) for m in self.received(user, "sampleMarkdown")]

    def action_cards_to(self, user: str) -> list[dict[str, Any]]:
        return [m.param for m in self.received(user) if m.msg_key.startswith("sampleActionCard")]

    def media_to(self, user: str) -> list[tuple[str, str, bytes]]:
        """The media ``user`` received, as (kind "image" | "file", file name, bytes), resolved through the uploads
        (an http(s) photoURL: ("image", url, b""))."""
        out: list[tuple[str, str, bytes]] = []
        for m in self.received(user):
            if m.msg_key == "sampleImageMsg":
                ref = str(m.param["photoURL"])
                _, name, data = self.uploads.get(ref, ("image", ref, b""))
                out.append(("image", name, data))
            elif m.msg_key == "sampleFile":
                _, _, data = self.uploads[str(m.param["mediaId"])]
                out.append(("file", str(m.param["fileName"]), data))
        return out

    def cards_to(self, user: str) -> list[CardInstance]:
        return [c for c in self.cards.values() if user in c.users]

    def card_state(self, out_track_id: str, user: str | None = None) -> dict[str, str] | None:
        """The card's data as ``user`` sees it now (public data overlaid with their private data)."""
        card = self.cards.get(out_track_id)
        if card is None or (user is not None and user not in card.users):
            return None
        return {**card.param_map, **(card.private.get(user, {}) if user else {})}

    def apply_tap_answer(self, out_track_id: str, answer: dict[str, Any]) -> None:
        """What DingTalk does with a card callback's answer: its ``cardData`` (and ``privateData``) update the
        instance the tap came from, by key when ``cardUpdateOptions.updateCardDataByKey`` says so (an empty answer
        changes nothing). A malformed answer is a violation."""
        if not answer:
            return
        card = self.cards.get(out_track_id)
        problems = validate_update({"outTrackId": out_track_id, **answer})
        if card is None:
            problems.append("the tapped card does not exist")
        if problems:
            for p in problems:
                self._violation("tapAnswer", p)
            return
        assert card is not None
        self._updateCard({"outTrackId": out_track_id, **answer})

    # ---- server -----------------------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        for (method, path), name in ENDPOINTS.items():
            app.router.add_route(method, path, self._handler(name))
        # oapi.dingtalk.com (the same app serves both hosts in tests): the token and media upload.
        app.router.add_get("/gettoken", self._oapi_token)
        app.router.add_post("/media/upload", self._media_upload)
        app.router.add_get("/_fake/files/{id}", self._file)
        app.router.add_get("/_fake/stats", self._stats)
        app.router.add_get("/_fake/received/{to}", self._received)
        return app

    # ---- oapi (errcode style: HTTP 200, errcode ≠ 0 on failure) ------------------------------------------------

    async def _oapi_token(self, request: web.Request) -> web.Response:
        self.calls["oapi_gettoken"] += 1
        q = request.query
        if q.get("appkey") != self.app_key or q.get("appsecret") != self.app_secret:
            return web.json_response({"errcode": 40089, "errmsg": "不合法的corpid或corpsecret"})
        answer = self._accessToken({"appKey": self.app_key, "appSecret": self.app_secret})
        return web.json_response(
            {"errcode": 0, "errmsg": "ok", "access_token": answer["accessToken"], "expires_in": answer["expireIn"]}
        )

    async def _media_upload(self, request: web.Request) -> web.Response:
        """0646 上传媒体文件: multipart ``type`` + ``media`` → ``media_id``; types and sizes as documented."""
        self.calls["media_upload"] += 1
        token = request.query.get("access_token")
        expires = self._tokens.get(token or "")
        if expires is None or self.now() >= expires:
            return web.json_response({"errcode": 40014, "errmsg": "不合法的access_token"})
        if self.quota_spent:
            return web.json_response({"errcode": 90018, "errmsg": "ApiCountLimitForOrg"})
        try:
            form = await request.post()
        except ValueError:
            form = None
        kind = str(form.get("type") or request.query.get("type") or "") if form is not None else ""
        media = form.get("media") if form is not None else None
        if kind not in MEDIA_TYPES or not isinstance(media, web.FileField):
            self._violation("media_upload", "type or media missing")
            return web.json_response({"errcode": 40004, "errmsg": "不合法的媒体文件类型"})
        data = media.file.read()
        limit, suffixes = MEDIA_TYPES[kind]
        name = media.filename or ""
        if not name.lower().endswith(suffixes):
            self._violation("media_upload", f"{name!r} is not an allowed {kind} file")
            return web.json_response({"errcode": 40004, "errmsg": "不合法的媒体文件类型"})
        if not data or len(data) > limit:
            self._violation("media_upload", f"{kind} of {len(data)} bytes")
            return web.json_response({"errcode": 40006, "errmsg": "不合法的文件长度"})
        media_id = "@" + secrets.token_urlsafe(16)
        self.uploads[media_id] = (kind, name, data)
        created = int(self.now() * 1000)
        return web.json_response(
            {"errcode": 0, "errmsg": "ok", "media_id": media_id, "created_at": created, "type": kind}
        )

    async def _stats(self, _request: web.Request) -> web.Response:
        """Counters for another process (a scenario driver, a benchmark); ``messages``: robot messages recorded
        (one per recipient and message: a batchSend to 3 staff ids adds 3)."""
        messages = sum(len(m) for m in self.messages.values())
        return web.json_response(
            {
                "calls": dict(self.calls),
                "api_calls": self.api_calls,
                "messages": messages,
                "violations": self.violations,
            }
        )

    async def _received(self, request: web.Request) -> web.Response:
        """What ``to`` (a staff id or a group) sees: robot messages, and cards in their current state."""
        to = request.match_info["to"]
        return web.json_response(
            {
                "messages": [{"msgKey": m.msg_key, "param": m.param, "at": m.at} for m in self.messages.get(to, [])],
                "cards": [
                    {"outTrackId": c.out_track_id, "cardParamMap": self.card_state(c.out_track_id, to)}
                    for c in self.cards_to(to)
                ],
            }
        )

    def _handler(self, endpoint: str) -> Callable[[web.Request], Any]:
        async def handle(request: web.Request) -> web.StreamResponse:
            self._base = f"{request.scheme}://{request.host}"
            raw = await request.read()
            token = request.headers.get("x-acs-dingtalk-access-token")
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
            self.requests.append(Request(endpoint, request.method, body, token, self.now()))
            self.calls[endpoint] += 1
            try:
                if endpoint != "accessToken":
                    self._check_token(token)
                    if self.quota_spent:
                        raise Refused(*FAULTS["quota"])
                fault = self._faults[endpoint].popleft() if self._faults[endpoint] else None
                if fault == "timeout":
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._release.wait(), self.timeout_seconds)
                    raise Refused(503, "system.busy")
                if fault == "lost":
                    # DingTalk did the work but its answer never arrived.
                    getattr(self, "_" + endpoint)(body)
                    raise Refused(502, "bad gateway")
                if fault is not None:
                    raise Refused(*(fault if isinstance(fault, tuple) else FAULTS[fault]))
                if not request.content_type.startswith("application/json"):
                    self._violation(endpoint, "Content-Type is not application/json")
                    raise Refused(400, "invalidParameter.msgBody.invalid")
                result = getattr(self, "_" + endpoint)(body)
            except Refused as exc:
                return web.json_response(
                    {"code": exc.code, "message": exc.message, "requestid": secrets.token_hex(8)}, status=exc.status
                )
            return web.json_response(result)

        return handle

    def _violation(self, endpoint: str, problem: str) -> None:
        self.violations.append(f"{endpoint}: {problem}")

    def _refuse(self, endpoint: str, problems: list[str], code: str) -> None:
        if problems:
            for p in problems:
                self._violation(endpoint, p)
            raise Refused(400, code, "; ".join(problems))

    def _check_token(self, token: str | None) -> None:
        if not token:
            self._violation("auth", "x-acs-dingtalk-access-token missing")
            raise Refused(400, "MissingParameter", "x-acs-dingtalk-access-token missing")
        expires = self._tokens.get(token)
        if expires is None or self.now() >= expires:
            raise Refused(400, "InvalidAuthentication", "不合法的access_token")

    def _accessToken(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not body.get("appKey") or not body.get("appSecret"):
            self._violation("accessToken", "appKey and appSecret required")
            raise Refused(400, "MissingParameter")
        if body["appKey"] != self.app_key or body["appSecret"] != self.app_secret:
            raise Refused(400, "invalidClientIdOrSecret", "无效的clientId或者clientSecret")
        now = self.now()
        # Asked again inside the validity, DingTalk returns the same token.
        for token, expires in self._tokens.items():
            if expires > now + 60:
                return {"accessToken": token, "expireIn": int(expires - now)}
        token = secrets.token_hex(16)
        self._tokens[token] = now + TOKEN_LIFETIME
        return {"accessToken": token, "expireIn": TOKEN_LIFETIME}

    def _media_problems(self, key: str, param: dict[str, Any]) -> list[str]:
        if key == "sampleImageMsg":
            ref = str(param.get("photoURL") or "")
            if not ref.startswith(("http://", "https://")):
                upload = self.uploads.get(ref)
                if upload is None:
                    return [f"sampleImageMsg photoURL {ref[:40]!r} is neither a URL nor an uploaded media_id"]
                if upload[0] != "image":
                    return ["sampleImageMsg photoURL names a non-image upload"]
        if key == "sampleFile":
            upload = self.uploads.get(str(param.get("mediaId") or ""))
            if upload is None:
                return ["sampleFile mediaId is not an uploaded media_id"]
            suffix = upload[1].rsplit(".", 1)[-1].lower() if "." in upload[1] else ""
            if upload[0] != "file" or str(param.get("fileType") or "").lower() != suffix:
                return [f"sampleFile fileType {param.get('fileType')!r} does not match the upload {upload[1]!r}"]
        return []

    def _batchSend(self, body: Any) -> dict[str, Any]:
        problems = validate_batch_send(body, self.robot_code)
        if not problems:
            problems = self._media_problems(*check_msg(body, self.robot_code)[1:])
        self._refuse("batchSend", problems, "invalidParameter.param.invalid")
        _, key, param = check_msg(body, self.robot_code)
        pqk = secrets.token_urlsafe(12)
        flow: list[str] = []
        for user in body["userIds"]:
            if self._flow[user] > 0:
                self._flow[user] -= 1
                flow.append(user)
                continue
            self.messages[user].append(Message(user, key, copy.deepcopy(param), self.now(), pqk))
        return {"processQueryKey": pqk, "invalidStaffIdList": [], "flowControlledStaffIdList": flow}

    def _groupSend(self, body: Any) -> dict[str, Any]:
        problems = [] if isinstance(body, dict) else ["body is not a JSON object"]
        if not problems:
            problems, key, param = check_msg(body, self.robot_code)
            if not isinstance(body.get("openConversationId"), str) or not body["openConversationId"]:
                problems.append("openConversationId missing")
        self._refuse("groupSend", problems, "invalidParameter.param.invalid")
        pqk = secrets.token_urlsafe(12)
        self.messages[body["openConversationId"]].append(
            Message(body["openConversationId"], key, param, self.now(), pqk)
        )
        return {"processQueryKey": pqk}

    def _createAndDeliver(self, body: Any) -> dict[str, Any]:
        problems = validate_create(body, self.robot_code, self.templates)
        if "param.templateNotExist" in problems:
            raise Refused(400, "param.templateNotExist")
        self._refuse("createAndDeliver", problems, "param.openDeliverModelError")
        spaces = parse_space_id(body["openSpaceId"])
        track = body["outTrackId"]
        card = self.cards.get(track)
        if card is None:
            # A new outTrackId creates the instance; an existing one keeps its data (0783: "需要设置全新的
            # outTrackId，否则更改不会生效") and is delivered to the spaces it lacks.
            card = CardInstance(
                track,
                body["cardTemplateId"],
                dict(body["cardData"].get("cardParamMap", {})),
                [],
                [],
                str(body.get("callbackType") or ""),
                str(body.get("callbackRouteKey") or ""),
                {u: dict((p or {}).get("cardParamMap", {})) for u, p in (body.get("privateData") or {}).items()},
            )
            card.history.append(dict(card.param_map))
            self.cards[track] = card
        results = []
        for kind, ident in spaces:
            target = card.users if kind == "IM_ROBOT" else card.groups
            if ident not in target:
                target.append(ident)
            results.append(
                {"spaceType": kind, "spaceId": ident, "success": True, "carrierId": secrets.token_urlsafe(8)}
            )
        return {"success": True, "result": {"outTrackId": track, "deliverResults": results}}

    def _updateCard(self, body: Any) -> dict[str, Any]:
        self._refuse("updateCard", validate_update(body), "param.invalid")
        card = self.cards.get(body["outTrackId"])
        if card is None:
            raise Refused(400, "param.cardNotExist")
        options = body.get("cardUpdateOptions") or {}
        if "cardData" in body:
            new = dict(body["cardData"].get("cardParamMap", {}))
            card.param_map = {**card.param_map, **new} if options.get("updateCardDataByKey") else new
        for user, p in (body.get("privateData") or {}).items():
            new = dict((p or {}).get("cardParamMap", {}))
            old = card.private.get(user, {})
            card.private[user] = {**old, **new} if options.get("updatePrivateDataByKey") else new
        card.updates += 1
        card.history.append(dict(card.param_map))
        return {"success": True, "result": True}

    def _registerCallback(self, body: Any) -> dict[str, Any]:
        problems = [] if isinstance(body, dict) else ["body is not a JSON object"]
        if not problems:
            for key in ("callbackRouteKey", "callbackUrl"):
                if not isinstance(body.get(key), str) or not body[key]:
                    problems.append(f"{key} missing")
            if body.get("callbackUrl") and not str(body["callbackUrl"]).startswith(("http://", "https://")):
                problems.append("callbackUrl is not a URL")
        self._refuse("registerCallback", problems, "param.empty")
        key = body["callbackRouteKey"]
        if key in self.callbacks and not body.get("forceUpdate"):
            raise Refused(500, "param.callbackRouteKeyExist")
        self.callbacks[key] = {"callbackUrl": body["callbackUrl"], "apiSecret": body.get("apiSecret") or ""}
        return {"success": True, "result": dict(self.callbacks[key])}

    def _download(self, body: Any) -> dict[str, Any]:
        problems = [] if isinstance(body, dict) else ["body is not a JSON object"]
        if not problems:
            if not body.get("downloadCode"):
                problems.append("downloadCode missing")
            if body.get("robotCode") != self.robot_code:
                problems.append("robotCode is not this app's robot")
        self._refuse("download", problems, "invalidParameter")
        code = body["downloadCode"]
        if code not in self.files or self.now() >= self.file_added[code] + DOWNLOAD_CODE_TTL:
            raise Refused(400, "resource.not.found")
        fid = secrets.token_urlsafe(12)
        self._download_urls[fid] = (code, self.now())
        return {"downloadUrl": f"{self._base}/_fake/files/{fid}"}

    async def _file(self, request: web.Request) -> web.Response:
        """The downloadUrl (another host in reality): no access token expected; expires like the code."""
        self.calls["file_get"] += 1
        if request.headers.get("x-acs-dingtalk-access-token") or "access_token" in request.query:
            self._violation("file_get", "the access token was sent to the download URL")
        found = self._download_urls.get(request.match_info["id"])
        if found is None:
            return web.Response(status=404)
        code, issued = found
        if self.now() >= issued + DOWNLOAD_URL_TTL:
            return web.Response(status=403, text="AccessDenied: Request has expired")
        return web.Response(body=self.files[code], content_type="application/octet-stream")


def main() -> None:
    """``python -m tests.fakes.dingtalk --port 8090``: the fake on its own, for manual runs and benchmarks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--app-key", default="dingdevappkey")
    parser.add_argument("--app-secret", default="dev-dingtalk-app-secret-0123456789abcdef")
    parser.add_argument("--robot-code", default="dingdevappkey")
    parser.add_argument("--template", action="append", default=[])
    args = parser.parse_args()
    fake = FakeDingTalk(
        app_key=args.app_key, app_secret=args.app_secret, robot_code=args.robot_code, templates=tuple(args.template)
    )
    web.run_app(fake.app(), host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
