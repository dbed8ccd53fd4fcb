"""DingTalk callbacks over HTTP: ``POST /dingtalk/callback`` (robot messages) and ``POST /dingtalk/card`` (card
taps); the accept functions are shared with Stream mode (``stream.py``): one parse, dedup and ingest path.

Robot messages, order of checks: headers → timestamp (format, replay window) → body size → signature → JSON
object → robotCode (the quota notice, errorCode 20001, is logged and acknowledged before it: it carries no
content) → sender in the directory (a stranger gets one text answer, nothing stored) → unsupported type (a text
answer, nothing stored) → ``Pipeline.ingest`` of each event (commit) → 200 ``{"msgtype": "empty"}``.

Card taps: headers → timestamp → body size → ddpaas signature → JSON → CardAction → sender → ingest (commit); then,
outside the acknowledgement bookkeeping (so a burst of taps does not slow down the handling they wait for), up to
``TAP_ANSWER_SECONDS`` from arrival waiting for the handler (``Pipeline.handled``): when it updated the tapped card,
the answer carries the tapper's new card (``cardData.cardParamMap``, ``updateCardDataByKey``), else ``{}``; every
other copy is updated afterwards by the outbox through the card instance API.

Rejections are 4xx and change nothing; a database failure is a 503 so that nothing unsaved is acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.channels import keys
from bot.channels.base import Host
from bot.channels.dingtalk import sign
from bot.channels.dingtalk.parse import (
    QUOTA_SPENT,
    Ignored,
    check_robot_code,
    error_code,
    load_json,
    parse_card,
    parse_robot,
)
from bot.channels.dingtalk.sign import CallbackRejected
from bot.core.intents import Intent, UpdateCard
from bot.infra import i18n
from cards.dingtalk import card_param_map

log = logging.getLogger(__name__)

PATH = "/dingtalk/callback"
CARD_PATH = "/dingtalk/card"
# DingTalk waits 2 s for a tap's answer; the rest is the network's.
TAP_ANSWER_SECONDS = 1.5
TAP_WAIT: web.AppKey[float] = web.AppKey("dingtalk_tap_wait", float)
EMPTY: dict[str, Any] = {"msgtype": "empty"}


class Unavailable(Exception):
    """The database did not answer: the callback is refused with a 503 (nothing was stored)."""


@dataclass(frozen=True)
class AcceptedTap:
    """A stored tap (``event_id``; None for a re-delivery) on ``card_ref``."""

    event_id: int | None
    card_ref: str


def text_answer(text: str) -> dict[str, Any]:
    """A robot callback's answer that is itself a reply message (shown to the sender)."""
    return {"msgtype": "text", "text": {"content": text}}


async def _registered(rt: Host, sender: str) -> bool:
    try:
        return await rt.directory.is_registered(rt.db, "dingtalk", sender)
    except Exception as exc:
        rt.metrics.errors.labels("dingtalk_callback").inc()
        log.error("dingtalk callback: directory lookup failed: %s", exc.__class__.__name__)
        raise Unavailable from None


async def _ingest(rt: Host, event: Any) -> int | None:
    try:
        result = await rt.pipeline.ingest(event)
    except Exception as exc:
        # Not persisted: answer non-200 so that DingTalk counts a failure instead of us losing the event.
        rt.metrics.errors.labels("dingtalk_callback").inc()
        log.error("dingtalk callback from %s not stored: %s", event.sender, exc.__class__.__name__)
        raise Unavailable from None
    return result.event_id


async def accept_robot(rt: Host, doc: dict[str, Any]) -> dict[str, Any]:
    """A verified robot message (HTTP body or Stream data): checked, stored (committed), and the answer's body.

    Raises CallbackRejected (4xx) or Unavailable (503)."""
    code = error_code(doc)
    if code is not None:
        if code == QUOTA_SPENT:
            log.warning("dingtalk: the org's monthly message quota is spent (errorCode 20001); messages are lost")
        else:
            log.warning("dingtalk: platform notice errorCode %s", code)
        rt.metrics.inbound.labels("dingtalk", "notice", "ignored").inc()
        return EMPTY
    check_robot_code(doc, rt.settings.dingtalk.robot_code)
    parsed = parse_robot(doc)
    if isinstance(parsed, Ignored):
        log.debug("dingtalk message ignored: %s", parsed.reason)
        return EMPTY
    locale = rt.settings.org.default_locale
    sender = parsed.events[0].sender if parsed.events else parsed.sender
    if not await _registered(rt, sender):
        rt.metrics.inbound.labels("dingtalk", "message", "unregistered").inc()
        log.warning("dingtalk sender %s is not in the directory", sender)
        return text_answer(i18n.t(locale, "not_registered"))
    if parsed.unsupported:
        rt.metrics.inbound.labels("dingtalk", "message", "unsupported").inc()
        log.info("dingtalk message type %s from %s not supported", parsed.unsupported[:40], sender)
        return text_answer(i18n.t(locale, "dingtalk.unsupported"))
    # In order, one commit each: a retry after a failure in between stores only what is missing (dedup keys).
    for event in parsed.events:
        await _ingest(rt, event)
    return EMPTY


async def accept_card(rt: Host, doc: dict[str, Any], delivery: str = "") -> AcceptedTap | None:
    """A verified card callback: the tap stored (committed); None when there is nothing to store (another
    callback type, a sender not in the directory). Raises CallbackRejected (4xx) or Unavailable (503)."""
    tap = parse_card(doc, delivery)
    if isinstance(tap, Ignored):
        log.debug("dingtalk card callback ignored: %s", tap.reason)
        return None
    if not await _registered(rt, tap.event.sender):
        rt.metrics.inbound.labels("dingtalk", "card_action", "unregistered").inc()
        log.warning("dingtalk tap from %s, who is not in the directory", tap.event.sender)
        return None
    return AcceptedTap(await _ingest(rt, tap.event), tap.event.card_ref)


def tapped_card(intents: Sequence[Intent], card_ref: str) -> dict[str, Any]:
    """The tap's answer for what the handler committed: the tapped card's new state, else ``{}``."""
    updates = [i for i in intents if isinstance(i, UpdateCard) and i.card.ref == card_ref]
    if not card_ref or not updates:
        return {}
    return {
        "cardData": {"cardParamMap": card_param_map(updates[-1].card)},
        "cardUpdateOptions": {"updateCardDataByKey": True},
    }


async def tap_answer(rt: Host, accepted: AcceptedTap | None, within: float) -> dict[str, Any]:
    """Wait up to ``within`` seconds for the tap's handling; the answer DingTalk shows the tapper."""
    if accepted is None or accepted.event_id is None:
        return {}
    intents = await rt.pipeline.handled(accepted.event_id, within)
    if intents is None:
        log.info("dingtalk tap %s not handled in time: answered without the new card", accepted.event_id)
        return {}
    return tapped_card(intents, accepted.card_ref)


async def _read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise CallbackRejected(413, "body too large")
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise CallbackRejected(413, "body too large") from None
    if len(body) > limit:
        raise CallbackRejected(413, "body too large")
    return body


def _reject(request: web.Request, exc: CallbackRejected) -> web.Response:
    rt = request.app[keys.RUNTIME]
    rt.metrics.inbound.labels("dingtalk", "callback", "rejected").inc()
    log.warning("dingtalk %s rejected: %s (%s) from %s", request.path, exc.status, exc.reason, request.remote)
    return web.Response(status=exc.status, text=exc.reason)


async def _verified_body(request: web.Request, ts_name: str, sign_name: str, *, card: bool) -> dict[str, Any]:
    rt = request.app[keys.RUNTIME]
    cfg = rt.settings.dingtalk
    timestamp = sign.header(request.headers.get(ts_name), ts_name)
    signature = sign.header(request.headers.get(sign_name), sign_name)
    sign.check_timestamp(timestamp, rt.clock.now().timestamp(), cfg.replay_window_seconds, seconds_allowed=card)
    body = await _read_body(request, rt.settings.server.max_body_bytes)
    if card:
        sign.check_card(timestamp, signature, cfg.card_api_secret.get_secret_value())
    else:
        sign.check_robot(timestamp, signature, cfg.app_secret.get_secret_value())
    return load_json(body)


async def receive(request: web.Request) -> web.Response:
    """A robot message: verify, parse, persist (commit), then 200 ``{"msgtype": "empty"}`` (or a text answer)."""
    rt = request.app[keys.RUNTIME]
    with rt.ack_first.acknowledging():
        try:
            doc = await _verified_body(request, sign.ROBOT_TIMESTAMP, sign.ROBOT_SIGN, card=False)
            answer = await accept_robot(rt, doc)
        except CallbackRejected as exc:
            return _reject(request, exc)
        except Unavailable:
            return web.Response(status=503)
        except Exception as exc:
            # Never a 500 for a payload surprise; the exception text may quote the payload, so log its class only.
            rt.metrics.errors.labels("dingtalk_callback").inc()
            return _reject(request, CallbackRejected(400, f"unreadable callback ({exc.__class__.__name__})"))
    return web.json_response(answer)


async def receive_card(request: web.Request) -> web.Response:
    """A card tap: verify, persist (commit), then answer within the bound with the tapper's updated card."""
    loop = asyncio.get_running_loop()
    arrived = loop.time()
    rt = request.app[keys.RUNTIME]
    with rt.ack_first.acknowledging():
        try:
            doc = await _verified_body(request, sign.CARD_TIMESTAMP, sign.CARD_SIGN, card=True)
            # The signed timestamp tells this tap from an earlier one of the same button; a re-sent request (the
            # same signature) is a duplicate.
            accepted = await accept_card(rt, doc, request.headers.get(sign.CARD_TIMESTAMP, ""))
        except CallbackRejected as exc:
            return _reject(request, exc)
        except Unavailable:
            return web.Response(status=503)
        except Exception as exc:
            rt.metrics.errors.labels("dingtalk_callback").inc()
            return _reject(request, CallbackRejected(400, f"unreadable card callback ({exc.__class__.__name__})"))
    bound = request.app.get(TAP_WAIT, TAP_ANSWER_SECONDS)
    answer = await tap_answer(rt, accepted, bound - (loop.time() - arrived))
    return web.json_response(answer)


def setup(app: web.Application) -> None:
    """Mount POST /dingtalk/callback and /dingtalk/card (HTTP mode). Does nothing when DingTalk is disabled, in
    Stream mode, or when the routes are already mounted."""
    cfg = app[keys.RUNTIME].settings.dingtalk
    if not cfg.enabled or cfg.mode != "http" or TAP_WAIT in app:
        return
    app[TAP_WAIT] = TAP_ANSWER_SECONDS
    app.router.add_post(PATH, receive)
    app.router.add_post(CARD_PATH, receive_card)
