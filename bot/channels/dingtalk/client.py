"""Async DingTalk OpenAPI client (api.dingtalk.com ``/v1.0``) on aiohttp.

Token: ``POST /v1.0/oauth2/accessToken {appKey, appSecret}`` → ``{accessToken, expireIn}``, cached until shortly
before expiry and **shared by every client of the process for the same app** (``_TOKENS``, keyed by base URL and
app key): concurrent callers share one fetch; a call answered 400 ``InvalidAuthentication`` drops the token and is
retried once with a fresh one. Every other call carries the header ``x-acs-dingtalk-access-token``.

Errors (HTTP 4xx/5xx with ``{"code", "message", "requestid"}``, ../shared/docs/protocols.md):
- throttles (403 ``Forbidden.AccessDenied.QpsLimitForAppkeyAndApi`` / ``…QpsLimitForApi``, 400 ``send.too.fast``),
  5xx, timeouts and lost connections: retryable, never sooner than ``THROTTLE_BACKOFF_SECONDS``;
- 403 ``Forbidden.AccessDenied.ApiCountLimitForOrg``: the org's monthly quota is spent — the ``quota_exhausted``
  state: every call fails fast, without asking DingTalk, until the next calendar month (org time zone);
- configuration errors (a wrong app key or secret, the server's IP not on the allow list, a permission not granted,
  an unknown robot or card template): reported (log + /healthz "degraded" with the code) and failed fast for
  ``CONFIG_BACKOFF_SECONDS`` instead of hammering the API;
- anything else: the request's fault, not retried.

Counting: ``on_call`` is told of every request sent to DingTalk except the token's (DingTalk does not count token
calls against the monthly quota); the channel counts them per month (``bot/channels/dingtalk/quota.py``). That
includes messageFiles/download and oapi media/upload, not the GET of a download URL (another host, no token).

Media (docs/attachments.md, "DingTalk"): ``download_url`` (messageFiles/download), ``fetch_url`` (the temporary URL,
bounded, redirects only to http(s)), ``upload_media`` (oapi ``/media/upload``, errcode-style answers).
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp

log = logging.getLogger(__name__)

TOKEN_PATH = "/v1.0/oauth2/accessToken"
TOKEN_HEADER = "x-acs-dingtalk-access-token"
INVALID_TOKEN = "InvalidAuthentication"
QUOTA_CODE = "Forbidden.AccessDenied.ApiCountLimitForOrg"
THROTTLE_CODES = frozenset(
    {"Forbidden.AccessDenied.QpsLimitForAppkeyAndApi", "Forbidden.AccessDenied.QpsLimitForApi", "send.too.fast"}
)
CONFIG_CODES = {
    "Forbidden.AccessDenied.AccessTokenPermissionDenied": "the app lacks a permission (开发者后台 → 权限管理)",
    "Forbidden.AccessDenied.IpNotInWhiteList": "this server's IP is not on the app's allow list (出口IP)",
    "invalidClientIdOrSecret": "wrong app_key or app_secret",
    "invalidParameter.robotCode.notExsit": "robot_code unknown: is the robot added to the app and published?",
    "invalidParameter.robotCode.invalid": "robot_code invalid",
    "invalidParameter.robotCode.empty": "robot_code empty",
    "template.not.existed": "robot_code unknown (no robot template)",
    "template.stopped": "the robot is stopped",
    "param.templateNotExist": "card_template_id unknown in the 卡片平台",
    "param.templateUnpublished": "the card template is not published",
}
# Refresh the token this long before DingTalk says it expires.
TOKEN_MARGIN_SECONDS = 300
# After a configuration error, fail fast for this long before asking DingTalk again.
CONFIG_BACKOFF_SECONDS = 60
# A throttled call is not retried sooner than this (the standard edition allows 20 QPS per app and API).
THROTTLE_BACKOFF_SECONDS = 1.0
# A media transfer (the download URL, oapi media/upload) may take this long; connecting keeps the request timeout.
MEDIA_TIMEOUT_SECONDS = 120.0
# Redirects followed from a download URL (each to an http(s) URL only).
MAX_REDIRECTS = 3
DOWNLOAD_PATH = "/v1.0/robot/messageFiles/download"
UPLOAD_PATH = "/media/upload"
# oapi errcodes (HTTP 200 with errcode ≠ 0): a rejected or expired token (refetch once), busy (retry), the org's
# monthly quota (as the fake answers it: *uncertain* which errcode oapi uses for ApiCountLimitForOrg).
OAPI_TOKEN_ERRORS = frozenset({40001, 40014, 42001})
OAPI_BUSY = frozenset({-1})
OAPI_QUOTA = frozenset({90018})


class DingTalkError(Exception):
    """A failed API call. ``retryable``: back off and retry; ``config``: waits for the operator; ``quota``: the
    org's monthly call quota is spent; ``unknown``: DingTalk may have acted on the request."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int = 0,
        retryable: bool,
        config: bool = False,
        quota: bool = False,
        unknown: bool = False,
        retry_after: float = 0.0,
    ) -> None:
        super().__init__(f"DingTalk {code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.retryable = retryable
        self.config = config
        self.quota = quota
        self.unknown = unknown
        self.retry_after = retry_after


@dataclass(frozen=True)
class ConfigProblem:
    """The last configuration error seen, for /healthz."""

    code: str
    hint: str
    at: float


@dataclass
class _Token:
    """One app's token, shared by every client of the process (``_TOKENS``)."""

    value: str | None = None
    expires: float = 0.0
    fetches: int = 0
    lock: asyncio.Lock | None = None
    loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)

    def lock_for_loop(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self.lock is None or self.loop is not loop:
            self.lock, self.loop = asyncio.Lock(), loop
        return self.lock


# (api base URL, app key) → the token: one fetch per process and app, whichever client asks.
_TOKENS: dict[tuple[str, str], _Token] = {}


def shared_token(base_url: str, app_key: str) -> _Token:
    return _TOKENS.setdefault((base_url.rstrip("/"), app_key), _Token())


def forget_tokens() -> None:
    """Drop every cached token (tests: a fake server may reuse an earlier one's address)."""
    _TOKENS.clear()


class DingTalkClient:
    """Calls the DingTalk OpenAPI with the process's shared access token for the app."""

    def __init__(
        self,
        session: aiohttp.ClientSession | None = None,
        *,
        base_url: str,
        app_key: str,
        app_secret: str,
        timeout: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
        month: Callable[[], str] | None = None,
        on_call: Callable[[str], None] | None = None,
        oapi_base_url: str = "https://oapi.dingtalk.com",
    ) -> None:
        self._session = session
        self._owns_session = session is None
        self._base = base_url.rstrip("/")
        self._oapi = oapi_base_url.rstrip("/")
        self._app_key = app_key
        self._secret = app_secret
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._media_timeout = aiohttp.ClientTimeout(total=max(timeout, MEDIA_TIMEOUT_SECONDS), sock_connect=timeout)
        self._now = monotonic
        self._month = month or (lambda: time.strftime("%Y-%m"))
        self._on_call = on_call
        self._token = shared_token(self._base, app_key)
        self.config_problem: ConfigProblem | None = None
        # The month ("YYYY-MM") DingTalk answered ApiCountLimitForOrg in: no call until the month changes.
        self.quota_exhausted: str | None = None

    @property
    def token_fetches(self) -> int:
        return self._token.fetches

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    # ---- token --------------------------------------------------------------------------------------------

    async def token(self) -> str:
        """A valid access token; concurrent callers (of every client of this app) share one fetch."""
        tok = self._token
        if tok.value and self._now() < tok.expires:
            return tok.value
        async with tok.lock_for_loop():
            if tok.value and self._now() < tok.expires:
                return tok.value
            self._fail_fast()
            body = {"appKey": self._app_key, "appSecret": self._secret}
            try:
                data = await self._request("POST", TOKEN_PATH, body, token=None)
            except DingTalkError as exc:
                if 400 <= exc.status < 500 and not exc.retryable and not exc.quota:
                    # A refused token request is the app's credentials: the operator must fix them.
                    hint = CONFIG_CODES.get(exc.code, "wrong app_key or app_secret")
                    raise self._config_error(exc.code, hint) from None
                raise
            value = data.get("accessToken")
            if not isinstance(value, str) or not value:
                raise DingTalkError("bad_token", "no accessToken in the answer", retryable=True, unknown=True)
            lifetime = int(data.get("expireIn") or 7200)
            tok.value = value
            tok.expires = self._now() + max(60, lifetime - TOKEN_MARGIN_SECONDS)
            tok.fetches += 1
            self.config_problem = None
            return value

    def invalidate(self, token: str) -> None:
        """Forget ``token`` (only if it is still the cached one: another task may have refreshed it)."""
        if self._token.value == token:
            self._token.value = None

    # ---- calls --------------------------------------------------------------------------------------------

    async def call(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """``method`` ``path`` with ``body`` as JSON and the access token; refetch the token once when DingTalk
        answers ``InvalidAuthentication``."""
        self._fail_fast()
        for attempt in (1, 2):
            token = await self.token()
            try:
                data = await self._request(method, path, body, token=token)
            except DingTalkError as exc:
                if exc.code == INVALID_TOKEN and attempt == 1:
                    log.info("DingTalk %s: token rejected, fetching a new one", path)
                    self.invalidate(token)
                    continue
                raise
            self.config_problem = None
            return data
        raise AssertionError("unreachable")

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.call("POST", path, body)

    async def put(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.call("PUT", path, body)

    # ---- media --------------------------------------------------------------------------------------------------

    async def download_url(self, download_code: str, robot_code: str) -> str:
        """``POST /v1.0/robot/messageFiles/download {downloadCode, robotCode}`` → the temporary ``downloadUrl``
        (one API call, counted for the quota)."""
        data = await self.post(DOWNLOAD_PATH, {"downloadCode": download_code, "robotCode": robot_code})
        url = data.get("downloadUrl")
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
            raise DingTalkError("bad_answer", "no http(s) downloadUrl in the answer", retryable=True)
        return url

    async def fetch_url(self, url: str, max_bytes: int) -> bytes:
        """GET a download URL (another host in reality: no access token is sent, it is not an API call): at most
        ``max_bytes`` (``too_large`` otherwise, without reading it all), within ``MEDIA_TIMEOUT_SECONDS``; redirects
        are followed by hand, ``MAX_REDIRECTS`` at most and only to http(s) URLs."""
        try:
            for _ in range(MAX_REDIRECTS + 1):
                if urlsplit(url).scheme not in ("http", "https"):
                    raise DingTalkError("bad_url", "download URL is not http(s)", retryable=False)
                async with self._http().get(url, allow_redirects=False, timeout=self._media_timeout) as resp:
                    if resp.status in (301, 302, 303, 307, 308):
                        url = urljoin(url, resp.headers.get("Location", ""))
                        continue
                    if resp.status >= 500:
                        raise DingTalkError(f"http_{resp.status}", "download server error", retryable=True)
                    if resp.status != 200:
                        # 403/404: the URL expired or was never valid; asking again needs a new downloadUrl.
                        raise DingTalkError(
                            f"http_{resp.status}", "download refused", status=resp.status, retryable=True
                        )
                    if resp.content_length is not None and resp.content_length > max_bytes:
                        raise DingTalkError("too_large", f"{resp.content_length} bytes", retryable=False)
                    body = bytearray()
                    async for chunk in resp.content.iter_chunked(64 * 1024):
                        body.extend(chunk)
                        if len(body) > max_bytes:
                            raise DingTalkError("too_large", f"over {max_bytes} bytes", retryable=False)
                    return bytes(body)
        except TimeoutError:
            raise DingTalkError("timeout", f"no file within {self._media_timeout.total}s", retryable=True) from None
        except aiohttp.ClientError as exc:
            raise DingTalkError("network", exc.__class__.__name__, retryable=True) from None
        raise DingTalkError("redirects", f"more than {MAX_REDIRECTS} redirects", retryable=False)

    async def upload_media(self, media_type: str, filename: str, content_type: str, data: bytes) -> str:
        """oapi ``POST /media/upload?access_token=…&type=image|voice|video|file`` (上传媒体文件; multipart field
        ``media`` with the file name) → the ``media_id``. One API call, counted for the quota. The app's v1.0 access
        token is accepted by oapi (enterprise internal apps share one token)."""
        self._fail_fast()
        for attempt in (1, 2):
            token = await self.token()
            if self._on_call is not None:
                self._on_call(UPLOAD_PATH)
            # ``type`` both in the query and as a form field: DingTalk's SDKs differ on where it goes.
            form = aiohttp.FormData(quote_fields=False)
            form.add_field("type", media_type)
            form.add_field("media", io.BytesIO(data), filename=filename, content_type=content_type)
            params = {"access_token": token, "type": media_type}
            try:
                async with self._http().post(
                    self._oapi + UPLOAD_PATH, params=params, data=form, timeout=self._media_timeout
                ) as resp:
                    status = resp.status
                    raw = await resp.read()
            except TimeoutError:
                raise DingTalkError(
                    "timeout", "media/upload: no answer", retryable=True, unknown=True, retry_after=1.0
                ) from None
            except aiohttp.ClientError as exc:
                raise DingTalkError(
                    "network", exc.__class__.__name__, retryable=True, unknown=True, retry_after=1.0
                ) from None
            if status >= 500:
                raise DingTalkError(f"http_{status}", "server error", status=status, retryable=True, unknown=True)
            try:
                answer = json.loads(raw)
            except ValueError:
                answer = None
            if status != 200 or not isinstance(answer, dict):
                raise DingTalkError(f"http_{status}", "media/upload: not a JSON answer", status=status, retryable=True)
            code = answer.get("errcode", 0)
            code = code if isinstance(code, int) else -1
            if code in OAPI_TOKEN_ERRORS and attempt == 1:
                self.invalidate(token)
                continue
            if code in OAPI_QUOTA:
                raise self._classify(403, {"code": QUOTA_CODE, "message": "media/upload"}, UPLOAD_PATH)
            if code != 0:
                message = str(answer.get("errmsg") or "")[:200]
                raise DingTalkError(str(code), message, retryable=code in OAPI_BUSY or code in OAPI_TOKEN_ERRORS)
            media_id = answer.get("media_id")
            if not isinstance(media_id, str) or not media_id:
                raise DingTalkError("bad_answer", "media/upload answered no media_id", retryable=True, unknown=True)
            self.config_problem = None
            return media_id
        raise AssertionError("unreachable")

    def _fail_fast(self) -> None:
        if self.quota_exhausted is not None:
            if self.quota_exhausted == self._month():
                raise DingTalkError(QUOTA_CODE, "monthly API quota spent", status=403, retryable=True, quota=True)
            self.quota_exhausted = None
        problem = self.config_problem
        if problem is not None and self._now() - problem.at < CONFIG_BACKOFF_SECONDS:
            raise DingTalkError(problem.code, f"configuration error: {problem.hint}", retryable=True, config=True)

    def _config_error(self, code: str, hint: str) -> DingTalkError:
        if self.config_problem is None or self.config_problem.code != code:
            log.error("DingTalk configuration error: %s — %s", code, hint)
        self.config_problem = ConfigProblem(code, hint, self._now())
        return DingTalkError(code, f"configuration error: {hint}", retryable=True, config=True)

    async def _request(self, method: str, path: str, body: dict[str, Any], *, token: str | None) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers[TOKEN_HEADER] = token
            if self._on_call is not None:
                self._on_call(path)
        url = self._base + path
        try:
            async with self._http().request(method, url, json=body, headers=headers, timeout=self._timeout) as resp:
                status = resp.status
                raw = await resp.read()
        except TimeoutError:
            raise DingTalkError(
                "timeout",
                f"no answer within {self._timeout.total}s",
                retryable=True,
                unknown=True,
                retry_after=THROTTLE_BACKOFF_SECONDS,
            ) from None
        except aiohttp.ClientError as exc:
            raise DingTalkError(
                "network", exc.__class__.__name__, retryable=True, unknown=True, retry_after=THROTTLE_BACKOFF_SECONDS
            ) from None
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = None
        if status >= 500:
            code = str(data.get("code") or f"http_{status}") if isinstance(data, dict) else f"http_{status}"
            raise DingTalkError(
                code, "server error", status=status, retryable=True, unknown=True, retry_after=THROTTLE_BACKOFF_SECONDS
            )
        if not isinstance(data, dict):
            raise DingTalkError("bad_json", "answer is not a JSON object", status=status, retryable=True, unknown=True)
        if status != 200:
            raise self._classify(status, data, path)
        return data

    def _classify(self, status: int, data: dict[str, Any], path: str) -> DingTalkError:
        code = str(data.get("code") or f"http_{status}")[:100]
        message = str(data.get("message") or "")[:200]
        if code == INVALID_TOKEN:
            return DingTalkError(code, message, status=status, retryable=True)
        if code in THROTTLE_CODES:
            return DingTalkError(code, message, status=status, retryable=True, retry_after=THROTTLE_BACKOFF_SECONDS)
        if code == QUOTA_CODE:
            if self.quota_exhausted is None:
                log.error("DingTalk: the org's monthly API call quota is spent (%s); no calls until next month", path)
            self.quota_exhausted = self._month()
            return DingTalkError(code, message, status=status, retryable=True, quota=True)
        if code in CONFIG_CODES:
            return self._config_error(code, CONFIG_CODES[code])
        return DingTalkError(code, message, status=status, retryable=False)
