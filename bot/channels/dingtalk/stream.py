"""Stream mode (``[dingtalk] mode = "stream"``): DingTalk's callbacks over an outgoing WebSocket, for intranets
without a public URL (docs/dingtalk_inbound.md, "Stream mode").

The official ``dingtalk-stream`` SDK decodes the frames (``CallbackMessage``, ``SystemMessage``), routes them by
topic to our handlers and sends the acks (``AckMessage``). What it does not do to our standard, this module does:
it opens the connection (``POST {api_base_url}/v1.0/gateway/connections/open``; the SDK's ``open_connection``
blocks the event loop with ``requests``, always calls api.dingtalk.com and probes 8.8.8.8 for a local IP), and
it reconnects with a bounded backoff and stops on request. Each callback goes through the same functions as the
HTTP routes (``webhook.accept_robot``, ``accept_card``, ``tap_answer``): the same parse, dedup and ingest, and the
ack is sent only once the event is committed. A refused callback is acked with 400, a database failure with 500.

Robot messages answered with a text over HTTP (a stranger, an unsupported type) cannot be answered in a Stream
ack: they are logged and acknowledged, nothing stored. The connection itself is the authentication (the ticket from
the app's key and secret): there is no per-message signature.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any
from urllib.parse import quote_plus

import aiohttp
import websockets
from dingtalk_stream import AckMessage, CallbackHandler, CallbackMessage, ChatbotMessage, Credential
from dingtalk_stream import DingTalkStreamClient as _SdkClient
from dingtalk_stream.version import VERSION_STRING

from bot.channels.base import Host
from bot.channels.dingtalk import webhook
from bot.channels.dingtalk.sign import CallbackRejected

log = logging.getLogger(__name__)

ROBOT_TOPIC: str = ChatbotMessage.TOPIC  # /v1.0/im/bot/messages/get
CARD_TOPIC: str = CallbackHandler.TOPIC_CARD_CALLBACK  # /v1.0/card/instances/callback
OPEN_PATH = "/v1.0/gateway/connections/open"
RECONNECT_BASE_SECONDS = 1.0
RECONNECT_MAX_SECONDS = 60.0


async def handle_robot(rt: Host, data: Any) -> tuple[int, Any]:
    """A robot message from the stream: (ack code, ack response)."""
    if not isinstance(data, dict):
        return AckMessage.STATUS_BAD_REQUEST, "data is not a JSON object"
    with rt.ack_first.acknowledging():
        try:
            answer = await webhook.accept_robot(rt, data)
        except CallbackRejected as exc:
            rt.metrics.inbound.labels("dingtalk", "callback", "rejected").inc()
            log.warning("dingtalk stream message rejected: %s (%s)", exc.status, exc.reason)
            return AckMessage.STATUS_BAD_REQUEST, exc.reason
        except webhook.Unavailable:
            return AckMessage.STATUS_SYSTEM_EXCEPTION, "not stored"
        except Exception as exc:
            rt.metrics.errors.labels("dingtalk_callback").inc()
            log.warning("dingtalk stream message unreadable (%s)", exc.__class__.__name__)
            return AckMessage.STATUS_BAD_REQUEST, "unreadable"
    if answer.get("msgtype") == "text":
        log.info("dingtalk stream: a text answer cannot travel in the ack, not sent")
    return AckMessage.STATUS_OK, "OK"


async def handle_card(
    rt: Host, data: Any, within: float = webhook.TAP_ANSWER_SECONDS, message_id: str = ""
) -> tuple[int, Any]:
    """A card tap from the stream: (ack code, the tapper's updated card or ``{}``); ``message_id`` (the frame's)
    tells it from another tap of the same button, a redelivered frame keeps it."""
    loop = asyncio.get_running_loop()
    arrived = loop.time()
    if not isinstance(data, dict):
        return AckMessage.STATUS_BAD_REQUEST, "data is not a JSON object"
    with rt.ack_first.acknowledging():
        try:
            accepted = await webhook.accept_card(rt, data, message_id)
        except CallbackRejected as exc:
            rt.metrics.inbound.labels("dingtalk", "callback", "rejected").inc()
            log.warning("dingtalk stream card callback rejected: %s (%s)", exc.status, exc.reason)
            return AckMessage.STATUS_BAD_REQUEST, exc.reason
        except webhook.Unavailable:
            return AckMessage.STATUS_SYSTEM_EXCEPTION, "not stored"
        except Exception as exc:
            rt.metrics.errors.labels("dingtalk_callback").inc()
            log.warning("dingtalk stream card callback unreadable (%s)", exc.__class__.__name__)
            return AckMessage.STATUS_BAD_REQUEST, "unreadable"
    return AckMessage.STATUS_OK, await webhook.tap_answer(rt, accepted, within - (loop.time() - arrived))


class _Handler(CallbackHandler):
    """One topic's SDK handler: ``process`` answers (code, response); the SDK builds and sends the ack."""

    def __init__(self, rt: Host, card: bool, tap_wait: float) -> None:
        super().__init__()
        self.logger = log
        self.rt = rt
        self.card = card
        self.tap_wait = tap_wait

    async def process(self, message: CallbackMessage) -> tuple[int, Any]:
        if self.card:
            message_id = getattr(message.headers, "message_id", None) or ""
            return await handle_card(self.rt, message.data, self.tap_wait, str(message_id))
        return await handle_robot(self.rt, message.data)


class DingTalkStream:
    """The runtime's Stream service (``ChannelPlugin.services``): one connection per app, reconnected until
    stopped. ``connected`` is set while a connection is open (tests, health)."""

    def __init__(self, rt: Host, tap_wait: float = webhook.TAP_ANSWER_SECONDS) -> None:
        self.rt = rt
        cfg = rt.settings.dingtalk
        self.client = _SdkClient(Credential(cfg.app_key, cfg.app_secret.get_secret_value()), logger=log)
        self.client.register_callback_handler(ROBOT_TOPIC, _Handler(rt, False, tap_wait))
        self.client.register_callback_handler(CARD_TOPIC, _Handler(rt, True, tap_wait))
        self.client.pre_start()
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._frames: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="dingtalk-stream")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        # Callbacks being handled finish (their acks may no longer go out: DingTalk then counts a failure).
        if self._frames:
            await asyncio.gather(*self._frames, return_exceptions=True)

    async def open_connection(self, session: aiohttp.ClientSession) -> dict[str, str]:
        """``{endpoint, ticket}`` for the app's subscriptions; raises on any failure."""
        cfg = self.rt.settings.dingtalk
        body = {
            "clientId": cfg.app_key,
            "clientSecret": cfg.app_secret.get_secret_value(),
            "subscriptions": [{"type": "CALLBACK", "topic": t} for t in (ROBOT_TOPIC, CARD_TOPIC)],
            "ua": f"dingtalk-sdk-python/v{VERSION_STRING}-union salesbot",
            "localIp": "",
        }
        url = cfg.api_base_url + OPEN_PATH
        async with session.post(url, json=body, headers={"Accept": "application/json"}) as resp:
            if resp.status != 200:
                raise ConnectionError(f"connections/open answered HTTP {resp.status}")
            answer = await resp.json(content_type=None)
        if not isinstance(answer, dict) or not all(isinstance(answer.get(k), str) for k in ("endpoint", "ticket")):
            raise ConnectionError("connections/open answered without endpoint and ticket")
        return {"endpoint": answer["endpoint"], "ticket": answer["ticket"]}

    async def _run(self) -> None:
        attempt = 0
        timeout = aiohttp.ClientTimeout(total=self.rt.settings.dingtalk.request_timeout_seconds)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                try:
                    connection = await self.open_connection(session)
                    uri = f"{connection['endpoint']}?ticket={quote_plus(connection['ticket'])}"
                    async with websockets.connect(uri) as ws:
                        self.client.websocket = ws
                        self.connected.set()
                        attempt = 0
                        log.info("dingtalk stream connected")
                        async for raw in ws:
                            self._frame(raw)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("dingtalk stream connection failed or lost: %s", exc.__class__.__name__)
                finally:
                    self.connected.clear()
                delay = min(RECONNECT_MAX_SECONDS, RECONNECT_BASE_SECONDS * 2 ** min(attempt, 8))
                attempt += 1
                await asyncio.sleep(delay)

    def _frame(self, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
        except (TypeError, ValueError):
            log.warning("dingtalk stream: a frame that is not JSON, skipped")
            return
        if not isinstance(message, dict):
            return
        # One task per frame, as the SDK does: a slow tap does not hold back the next message.
        task = asyncio.create_task(self._route(message))
        self._frames.add(task)
        task.add_done_callback(self._frames.discard)

    async def _route(self, message: dict[str, Any]) -> None:
        with contextlib.suppress(websockets.exceptions.ConnectionClosed):
            try:
                result = await self.client.route_message(message)
                if result == _SdkClient.TAG_DISCONNECT and self.client.websocket is not None:
                    # The gateway asks us to move (a deploy on its side): close, the loop reconnects.
                    await self.client.websocket.close()
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                # A frame the SDK could not decode (its data not JSON …): refused, as over HTTP.
                log.warning("dingtalk stream: frame not routed (%s)", exc.__class__.__name__)
                await self._refuse(message)

    async def _refuse(self, message: dict[str, Any]) -> None:
        headers = message.get("headers")
        message_id = headers.get("messageId") if isinstance(headers, dict) else None
        if not isinstance(message_id, str) or self.client.websocket is None:
            return
        ack = AckMessage()
        ack.code = AckMessage.STATUS_BAD_REQUEST
        ack.headers.message_id = message_id
        ack.headers.content_type = "application/json"
        ack.message = "unreadable"
        await self.client.websocket.send(json.dumps(ack.to_dict()))
