"""The WeCom callback URL: GET answers URL verification, POST persists one event and acknowledges it.

Order of checks: query → timestamp (format, replay window) → body size → outer XML → signature → decryption →
receive id → inner XML → ``Pipeline.ingest`` (commit) → 200 with an empty body; replies go out later through the API.
A tap's ResponseCode is committed with its event (a ``wecom_card_codes`` row, source "tap"), so it is never in the
neutral event and a crash after the acknowledgement does not lose it; the channel spends it on the next update of
the tapped card (``channel.WeComChannel._update``).
Rejections are 4xx and change nothing; a database failure is a 503 so that nothing unsaved is acknowledged.
https://developer.work.weixin.qq.com/document/path/90930 (回调配置)
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import datetime

from aiohttp import web

from bot.channels import keys
from bot.channels.base import Host
from bot.channels.wecom.crypto import CallbackRejected, WeComCrypto
from bot.channels.wecom.parse import Ignored, parse_callback_and_code, parse_xml
from bot.core.events import CardAction, EnterChat, InboundEvent, LocationShared
from bot.infra import i18n
from storage.models import WeComCardCode

log = logging.getLogger(__name__)

PATH = "/wecom/callback"
CRYPTO: web.AppKey[WeComCrypto] = web.AppKey("wecom_crypto", WeComCrypto)
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
# Column sizes of wecom_card_codes: a longer code or task id cannot be one WeCom issued for our cards.
CODE_MAX = 256
TASK_ID_MAX = 128


def _query(request: web.Request, names: Sequence[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for name in names:
        values = request.query.getall(name, [])
        if len(values) != 1 or not values[0]:
            raise CallbackRejected(400, f"query parameter {name} missing or repeated")
        params[name] = values[0]
    return params


def _check_timestamp(rt: Host, timestamp: str) -> None:
    if not _TIMESTAMP.fullmatch(timestamp):
        raise CallbackRejected(400, "timestamp is not an integer")
    window = rt.settings.wecom.replay_window_seconds
    if window > 0 and abs(rt.clock.now().timestamp() - int(timestamp)) > window:
        raise CallbackRejected(403, "timestamp outside the replay window")


async def _read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise CallbackRejected(413, "body too large")
    try:
        # aiohttp stops reading once the body passes the app's client_max_size (the same setting as ``limit``).
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise CallbackRejected(413, "body too large") from None
    if len(body) > limit:
        raise CallbackRejected(413, "body too large")
    return body


def _outer_encrypt(body: bytes) -> str:
    """``<Encrypt>`` of ``<xml><ToUserName/><AgentID/><Encrypt/></xml>``; the other fields are not signed."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise CallbackRejected(400, "body is not UTF-8") from None
    encrypt = parse_xml(text).get("Encrypt")
    if not isinstance(encrypt, str) or not encrypt.strip():
        raise CallbackRejected(400, "no Encrypt element")
    return encrypt.strip()


def _reject(request: web.Request, exc: CallbackRejected) -> web.Response:
    rt = request.app[keys.RUNTIME]
    rt.metrics.inbound.labels("wecom", "callback", "rejected").inc()
    log.warning("wecom callback rejected: %s %s (%s) from %s", request.method, exc.status, exc.reason, request.remote)
    return web.Response(status=exc.status, text=exc.reason)


async def verify_url(request: web.Request) -> web.Response:
    """URL verification: answer the decrypted ``echostr`` as is (no quotes, no newline, within 1 s)."""
    rt = request.app[keys.RUNTIME]
    try:
        q = _query(request, ("msg_signature", "timestamp", "nonce", "echostr"))
        _check_timestamp(rt, q["timestamp"])
        # base64 has no spaces: a '+' sent without URL-encoding arrives as ' ' after query decoding.
        echostr = q["echostr"].replace(" ", "+")
        plain = request.app[CRYPTO].verify_url(q["msg_signature"], q["timestamp"], q["nonce"], echostr)
    except CallbackRejected as exc:
        return _reject(request, exc)
    return web.Response(text=plain, content_type="text/plain")


async def receive(request: web.Request) -> web.Response:
    """A message or event: verify, decrypt, parse, persist (commit), then 200 with an empty body."""
    with request.app[keys.RUNTIME].ack_first.acknowledging():
        return await _receive(request)


async def _receive(request: web.Request) -> web.Response:
    rt = request.app[keys.RUNTIME]
    cfg = rt.settings.wecom
    tz = rt.settings.org.tz
    try:
        q = _query(request, ("msg_signature", "timestamp", "nonce"))
        _check_timestamp(rt, q["timestamp"])
        body = await _read_body(request, rt.settings.server.max_body_bytes)
        encrypt = _outer_encrypt(body)
        inner = request.app[CRYPTO].decrypt(q["msg_signature"], q["timestamp"], q["nonce"], encrypt)
        event, code = parse_callback_and_code(
            inner,
            corp_id=cfg.corp_id,
            agent_id=cfg.agent_id,
            local_date=lambda ts: datetime.fromtimestamp(ts, tz).date().isoformat(),
        )
    except CallbackRejected as exc:
        return _reject(request, exc)
    except Exception as exc:
        # Never a 500 for a payload surprise; the exception text may quote the payload, so log its class only.
        rt.metrics.errors.labels("wecom_callback").inc()
        return _reject(request, CallbackRejected(400, f"unreadable callback ({exc.__class__.__name__})"))
    if isinstance(event, Ignored):
        log.debug("wecom callback ignored: %s", event.reason)
        return web.Response()
    try:
        registered = await rt.directory.is_registered(rt.db, "wecom", event.sender)
    except Exception as exc:
        rt.metrics.errors.labels("wecom_callback").inc()
        log.error("wecom callback: directory lookup failed: %s", exc.__class__.__name__)
        return web.Response(status=503)
    if not registered:
        return _unregistered(request, event, q["nonce"])
    try:
        await rt.pipeline.ingest(event, _tap_code(rt, event, code))
    except Exception as exc:
        # Not persisted: answer non-200 so that WeCom counts a failure instead of us losing the event.
        rt.metrics.errors.labels("wecom_callback").inc()
        log.error("wecom callback from %s not stored: %s", event.sender, exc.__class__.__name__)
        return web.Response(status=503)
    return web.Response()


def _tap_code(rt: Host, event: InboundEvent, code: str) -> list[WeComCardCode]:
    """The tap's response code as a row committed with the event (none when there is nothing usable)."""
    if not isinstance(event, CardAction) or not code or not event.card_ref:
        return []
    if len(code) > CODE_MAX or len(event.card_ref) > TASK_ID_MAX:
        log.warning("wecom tap from %s: response code or task id too long, not kept", event.sender)
        return []
    return [WeComCardCode(code=code, task_id=event.card_ref, source="tap", issued_at=rt.clock.now(), spent_at=None)]


def _unregistered(request: web.Request, event: InboundEvent, nonce: str) -> web.Response:
    """A sender not in the directory: one polite passive reply in the HTTP answer, nothing stored."""
    rt = request.app[keys.RUNTIME]
    rt.metrics.inbound.labels("wecom", event.kind, "unregistered").inc()
    log.warning("wecom sender %s is not in the directory", event.sender)
    if isinstance(event, EnterChat) or (isinstance(event, LocationShared) and event.passive):
        return web.Response()
    timestamp = str(int(rt.clock.now().timestamp()))
    text = i18n.t(rt.settings.org.default_locale, "not_registered")
    inner = (
        f"<xml><ToUserName>{_cdata(event.sender)}</ToUserName><FromUserName>{_cdata(rt.settings.wecom.corp_id)}"
        f"</FromUserName><CreateTime>{timestamp}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content>{_cdata(text)}</Content></xml>"
    )
    encrypt, signature = request.app[CRYPTO].encrypt(inner, nonce, timestamp)
    body = (
        f"<xml><Encrypt>{_cdata(encrypt)}</Encrypt><MsgSignature>{_cdata(signature)}</MsgSignature>"
        f"<TimeStamp>{timestamp}</TimeStamp><Nonce>{_cdata(nonce)}</Nonce></xml>"
    )
    return web.Response(text=body, content_type="application/xml")


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def setup(app: web.Application) -> None:
    """Mount GET/POST /wecom/callback with a WeComCrypto built once from ``settings.wecom``.

    Does nothing when WeCom is disabled or the routes are already mounted.
    """
    cfg = app[keys.RUNTIME].settings.wecom
    if not cfg.enabled or CRYPTO in app:
        return
    app[CRYPTO] = WeComCrypto(cfg.token.get_secret_value(), cfg.encoding_aes_key.get_secret_value(), cfg.corp_id)
    app.router.add_get(PATH, verify_url)
    app.router.add_post(PATH, receive)
