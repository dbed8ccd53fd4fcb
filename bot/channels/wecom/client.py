"""Async WeCom API client on aiohttp (wechatpy's client is synchronous).

Token: fetched from ``gettoken``, cached until shortly before expiry, one fetch at a time for all concurrent senders,
refetched once on 40014 / 42001 / 41001. 40001 / 40013 / 60020 are configuration errors: reported (log + /healthz)
and failed fast for a while instead of hammering the API.
https://developer.work.weixin.qq.com/document/path/91039 (access_token), /90313 (global error codes)
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

log = logging.getLogger(__name__)

TOKEN_ERRORS = frozenset({40014, 42001, 41001})
RETRYABLE = frozenset({-1, 45009, 45033})
CONFIG_ERRORS = {
    40001: "wrong app secret (corpsecret)",
    40013: "wrong corp id",
    60020: "this server's IP is not in the app's trusted IP list (企业可信IP)",
}
# Refresh the token this long before WeCom says it expires.
TOKEN_MARGIN_SECONDS = 300
# How long a media download or upload may take in all.
MEDIA_TIMEOUT_SECONDS = 120.0
# After a configuration error, fail fast for this long before asking WeCom again.
CONFIG_BACKOFF_SECONDS = 60


class WeComError(Exception):
    """An API call failed. ``retryable`` tells the outbox whether to back off and retry."""

    def __init__(
        self, errcode: int | str, errmsg: str, *, retryable: bool, config: bool = False, unknown: bool = False
    ) -> None:
        super().__init__(f"WeCom {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg
        self.retryable = retryable
        # A configuration error (wrong secret, untrusted IP): waiting helps only once the operator fixes it.
        self.config = config
        # No answer we can trust (timeout, connection lost, 5xx): WeCom may have acted on the request.
        self.unknown = unknown


@dataclass(frozen=True)
class ConfigProblem:
    """The last configuration error seen, for /healthz."""

    errcode: int
    hint: str
    at: float


class RateLimiter:
    """A token bucket: ``rate`` calls per ``per`` seconds, awaited by callers."""

    def __init__(
        self,
        rate: int,
        per: float,
        now: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.capacity = float(rate)
        self.tokens = float(rate)
        self.fill = rate / per
        self.now = now
        self.sleep = sleep
        self.stamp = now()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                t = self.now()
                self.tokens = min(self.capacity, self.tokens + (t - self.stamp) * self.fill)
                self.stamp = t
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                await self.sleep((1 - self.tokens) / self.fill)


class WeComClient:
    """Calls the WeCom server API with a cached, shared access token."""

    def __init__(
        self,
        session: aiohttp.ClientSession | None = None,
        *,
        base_url: str,
        corp_id: str,
        secret: str,
        timeout: float = 5.0,
        calls_per_minute: int = 3000,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        # Created on first use (inside the running loop) unless the caller shares one.
        self._session = session
        self._owns_session = session is None
        self._base = base_url if base_url.endswith("/") else base_url + "/"
        self._corp_id = corp_id
        self._secret = secret
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        # A file (up to 20 MB) takes longer than a message: its own total, the connection still bounded by timeout.
        self._media_timeout = aiohttp.ClientTimeout(total=max(timeout, MEDIA_TIMEOUT_SECONDS), sock_connect=timeout)
        self._now = monotonic
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lock = asyncio.Lock()
        self._limiter = RateLimiter(calls_per_minute, 60.0, monotonic, sleep)
        self.config_problem: ConfigProblem | None = None
        self.token_fetches = 0

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
        """A valid access token; concurrent callers share one fetch."""
        if self._token and self._now() < self._token_expires:
            return self._token
        async with self._token_lock:
            if self._token and self._now() < self._token_expires:
                return self._token
            self._fail_fast_on_config_problem()
            data = await self._request("GET", "gettoken", params={"corpid": self._corp_id, "corpsecret": self._secret})
            self._check(data, "gettoken")
            self._token = str(data["access_token"])
            lifetime = int(data.get("expires_in", 7200))
            self._token_expires = self._now() + max(60, lifetime - TOKEN_MARGIN_SECONDS)
            self.token_fetches += 1
            self.config_problem = None
            return self._token

    def invalidate(self, token: str) -> None:
        """Forget ``token`` (only if it is still the cached one: another task may have refreshed it)."""
        if self._token == token:
            self._token = None

    def _fail_fast_on_config_problem(self) -> None:
        problem = self.config_problem
        if problem is not None and self._now() - problem.at < CONFIG_BACKOFF_SECONDS:
            raise WeComError(problem.errcode, f"configuration error: {problem.hint}", retryable=True, config=True)

    # ---- calls --------------------------------------------------------------------------------------------

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` to ``path`` with the access token; refetch the token once if WeCom says it is stale."""
        # A configuration error seen on any call (60020 comes with a valid cached token) fails fast for a while.
        self._fail_fast_on_config_problem()
        for attempt in (1, 2):
            token = await self.token()
            data = await self._request("POST", path, params={"access_token": token}, json=body)
            code = int(data.get("errcode", 0))
            if code in TOKEN_ERRORS and attempt == 1:
                log.info("WeCom %s: token rejected (%s), fetching a new one", path, code)
                self.invalidate(token)
                continue
            self._check(data, path)
            self.config_problem = None
            return data
        raise AssertionError("unreachable")

    async def get_media(self, media_id: str, max_bytes: int) -> tuple[bytes, str, str]:
        """Download a temporary media (GET media/get, path/90254): (bytes, filename, content type). WeCom answers
        the file itself, or a JSON error body (40007: invalid or expired media_id, after 3 days). A body over
        ``max_bytes`` is refused with errcode ``too_large`` without reading it all."""
        self._fail_fast_on_config_problem()
        for attempt in (1, 2):
            token = await self.token()
            params = {"access_token": token, "media_id": media_id}
            data, filename, ctype, err = await self._download("media/get", params, max_bytes)
            if err is None:
                self.config_problem = None
                return data, filename, ctype
            code = int(err.get("errcode", 0))
            if code in TOKEN_ERRORS and attempt == 1:
                log.info("WeCom media/get: token rejected (%s), fetching a new one", code)
                self.invalidate(token)
                continue
            self._check(err, "media/get")
            raise WeComError("bad_answer", "media/get answered JSON without an error", retryable=True)
        raise AssertionError("unreachable")

    async def upload_media(self, media_type: str, filename: str, content_type: str, data: bytes) -> dict[str, Any]:
        """Upload a temporary media (POST media/upload?type=…, path/90253; multipart field ``media`` with the file
        name and content type): ``{errcode, type, media_id, created_at}``; the media_id is valid 3 days."""
        self._fail_fast_on_config_problem()
        for attempt in (1, 2):
            token = await self.token()
            # The name as it is (UTF-8), as WeCom's example and curl send it: aiohttp would percent-encode it, and
            # people would see "%E6%89%8B…" as the file's name.
            form = aiohttp.FormData(quote_fields=False)
            # A file object, not raw bytes: aiohttp streams it instead of copying up to 20 MB on the event loop.
            form.add_field("media", io.BytesIO(data), filename=filename, content_type=content_type)
            answer = await self._request(
                "POST", "media/upload", params={"access_token": token, "type": media_type}, data=form
            )
            code = int(answer.get("errcode", 0))
            if code in TOKEN_ERRORS and attempt == 1:
                self.invalidate(token)
                continue
            self._check(answer, "media/upload")
            if not isinstance(answer.get("media_id"), str) or not answer["media_id"]:
                raise WeComError("bad_answer", "media/upload answered no media_id", retryable=True, unknown=True)
            self.config_problem = None
            return answer
        raise AssertionError("unreachable")

    async def _download(
        self, path: str, params: dict[str, str], max_bytes: int
    ) -> tuple[bytes, str, str, dict[str, Any] | None]:
        """(bytes, filename, content type, None) of a file answer, or (b"", "", "", the JSON error body)."""
        await self._limiter.acquire()
        url = self._base + path
        try:
            async with self._http().get(url, params=params, timeout=self._media_timeout) as resp:
                if resp.status >= 500:
                    raise WeComError(f"http_{resp.status}", "server error", retryable=True, unknown=True)
                if resp.status != 200:
                    raise WeComError(f"http_{resp.status}", "unexpected HTTP status", retryable=False)
                ctype = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
                if resp.content_length is not None and resp.content_length > max_bytes:
                    raise WeComError("too_large", f"{resp.content_length} bytes", retryable=False)
                body = bytearray()
                async for chunk in resp.content.iter_chunked(64 * 1024):
                    body.extend(chunk)
                    if len(body) > max_bytes:
                        raise WeComError("too_large", f"over {max_bytes} bytes", retryable=False)
                filename = resp.content_disposition.filename if resp.content_disposition else ""
        except TimeoutError:
            raise WeComError(
                "timeout", f"no file within {self._media_timeout.total}s", retryable=True, unknown=True
            ) from None
        except aiohttp.ClientError as exc:
            raise WeComError("network", exc.__class__.__name__, retryable=True, unknown=True) from None
        # An error is JSON (its Content-Type says so; some gateways say text/plain): a file never starts with "{".
        if ctype in ("application/json", "text/plain") and body[:1] == b"{":
            try:
                err = json.loads(bytes(body))
            except ValueError:
                err = None
            if isinstance(err, dict) and "errcode" in err:
                return b"", "", "", err
        return bytes(body), filename or "", ctype, None

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str],
        json: dict[str, Any] | None = None,
        data: aiohttp.FormData | None = None,
    ) -> dict[str, Any]:
        await self._limiter.acquire()
        url = self._base + path
        timeout = self._timeout if data is None else self._media_timeout
        try:
            async with self._http().request(method, url, params=params, json=json, data=data, timeout=timeout) as resp:
                if resp.status >= 500:
                    raise WeComError(f"http_{resp.status}", "server error", retryable=True, unknown=True)
                if resp.status != 200:
                    raise WeComError(f"http_{resp.status}", "unexpected HTTP status", retryable=False)
                answer = await resp.json(content_type=None)
        except TimeoutError:
            raise WeComError(
                "timeout", f"no answer within {self._timeout.total}s", retryable=True, unknown=True
            ) from None
        except aiohttp.ClientError as exc:
            raise WeComError("network", exc.__class__.__name__, retryable=True, unknown=True) from None
        except ValueError:
            raise WeComError("bad_json", "answer is not JSON", retryable=True, unknown=True) from None
        if not isinstance(answer, dict):
            raise WeComError("bad_json", "answer is not a JSON object", retryable=True, unknown=True)
        return answer

    def _check(self, data: dict[str, Any], path: str) -> None:
        code = int(data.get("errcode", 0))
        if code == 0:
            return
        msg = str(data.get("errmsg", ""))[:200]
        if code in CONFIG_ERRORS:
            hint = CONFIG_ERRORS[code]
            if self.config_problem is None or self.config_problem.errcode != code:
                log.error("WeCom configuration error on %s: %s %s — %s", path, code, msg, hint)
            self.config_problem = ConfigProblem(code, hint, self._now())
            raise WeComError(code, f"configuration error: {hint}", retryable=True, config=True)
        raise WeComError(code, msg, retryable=code in RETRYABLE or code in TOKEN_ERRORS)
