"""Build DingTalk callbacks exactly as DingTalk sends them: robot messages (the JSON of
``/v1.0/im/bot/messages/get``, field names as the official SDK's ``ChatbotMessage.from_dict``) signed with the
``timestamp``/``sign`` headers, and interactive card taps (``actionCallback`` with its ``content`` a JSON string)
signed with the ``x-ddpaas-signature*`` headers. The signatures are computed independently of the bot's code."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
from typing import Any

CORP = "ding9f50b15bccd16741"
CHATBOT_USER = "$:LWCP_v1:$salesbotRobot0000000000"


def robot_signature(timestamp: str, app_secret: str) -> str:
    digest = hmac.new(app_secret.encode(), f"{timestamp}\n{app_secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def card_signature(timestamp: str, api_secret: str) -> str:
    digest = hmac.new(api_secret.encode(), timestamp.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def dumps(doc: Any) -> bytes:
    """JSON as DingTalk's servers write it (UTF-8, no ASCII escapes)."""
    return json.dumps(doc, ensure_ascii=False).encode()


class DingTalkSigner:
    """One enterprise internal app as DingTalk sees it: builds its robot messages and card taps and signs them."""

    def __init__(self, app_secret: str, robot_code: str, card_api_secret: str = "") -> None:
        self.app_secret = app_secret
        self.robot_code = robot_code
        self.card_api_secret = card_api_secret
        self._ids = itertools.count(1)

    def msg_id(self) -> str:
        return f"msgVvVx{next(self._ids):06d}Q/7ZJkQ=="

    # ---- robot messages ---------------------------------------------------------------------------------------

    def message(
        self,
        staff_id: str,
        msgtype: str,
        now_ms: int,
        *,
        msg_id: str | None = None,
        nick: str = "张三",
        group: bool = False,
        at_robot: bool = True,
        create_at_as_string: bool = False,
        **body: Any,
    ) -> dict[str, Any]:
        """The common fields of a robot message plus ``body`` (``text`` or ``content``)."""
        conversation = "cidGroupSales0001==" if group else f"cid{staff_id}Single=="
        doc: dict[str, Any] = {
            "conversationId": conversation,
            "atUsers": [{"dingtalkId": CHATBOT_USER}] if group and at_robot else [],
            "chatbotCorpId": CORP,
            "chatbotUserId": CHATBOT_USER,
            "msgId": msg_id or self.msg_id(),
            "senderNick": nick,
            "isAdmin": False,
            "senderStaffId": staff_id,
            "sessionWebhookExpiredTime": now_ms + 90 * 60 * 1000,
            "createAt": str(now_ms) if create_at_as_string else now_ms,
            "senderCorpId": CORP,
            "conversationType": "2" if group else "1",
            "senderId": f"$:LWCP_v1:${staff_id}00000000",
            "sessionWebhook": "https://oapi.dingtalk.com/robot/sendBySession?session=5f1b0c0e1a",
            "robotCode": self.robot_code,
            "msgtype": msgtype,
            "isInAtList": at_robot if group else True,
        }
        if group:
            doc["conversationTitle"] = "华东销售群"
        doc.update(body)
        return doc

    def text(self, staff_id: str, content: str, now_ms: int, **kw: Any) -> dict[str, Any]:
        return self.message(staff_id, "text", now_ms, text={"content": content}, **kw)

    def picture(self, staff_id: str, download_code: str, now_ms: int, **kw: Any) -> dict[str, Any]:
        content = {"downloadCode": download_code, "pictureDownloadCode": download_code}
        return self.message(staff_id, "picture", now_ms, content=content, **kw)

    def rich_text(self, staff_id: str, parts: list[dict[str, Any]], now_ms: int, **kw: Any) -> dict[str, Any]:
        """``parts``: ``{"text": …}`` and ``{"type": "picture", "downloadCode": …}`` items, in order."""
        return self.message(staff_id, "richText", now_ms, content={"richText": parts}, **kw)

    def file(self, staff_id: str, download_code: str, file_name: str, now_ms: int, **kw: Any) -> dict[str, Any]:
        content = {"downloadCode": download_code, "fileName": file_name, "fileId": "123456", "spaceId": "789"}
        return self.message(staff_id, "file", now_ms, content=content, **kw)

    def audio(
        self, staff_id: str, download_code: str, recognition: str, now_ms: int, duration_ms: int = 4000, **kw: Any
    ) -> dict[str, Any]:
        content = {"downloadCode": download_code, "duration": duration_ms, "recognition": recognition}
        return self.message(staff_id, "audio", now_ms, content=content, **kw)

    def video(self, staff_id: str, download_code: str, now_ms: int, **kw: Any) -> dict[str, Any]:
        content = {"downloadCode": download_code, "duration": 12, "videoType": "mp4"}
        return self.message(staff_id, "video", now_ms, content=content, **kw)

    def unknown(self, staff_id: str, now_ms: int, **kw: Any) -> dict[str, Any]:
        return self.message(staff_id, "unknownMsgType", now_ms, content={"unknownMsgType": "不支持的消息类型"}, **kw)

    def quota_spent(self, now_ms: int) -> dict[str, Any]:
        """The notice DingTalk sends once the org's monthly quota is used up: an errorCode, no content."""
        return {"errorCode": 20001, "errorMsg": "本月调用额度已用完", "robotCode": self.robot_code, "createAt": now_ms}

    def signed(self, doc: dict[str, Any] | bytes, timestamp_ms: int) -> tuple[dict[str, str], bytes]:
        """Headers and body of the robot callback POST."""
        body = doc if isinstance(doc, bytes) else dumps(doc)
        ts = str(timestamp_ms)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "timestamp": ts,
            "sign": robot_signature(ts, self.app_secret),
        }
        return headers, body

    # ---- card taps ----------------------------------------------------------------------------------------------

    def card_tap(
        self,
        user_id: str,
        out_track_id: str,
        key: str,
        *,
        action_ids: list[str] | None = None,
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """An ``actionCallback``: the tapped button's ``key`` in ``cardPrivateData.params``."""
        private = {"actionIds": action_ids or ["button_tap"], "params": {"key": key, **(params or {})}}
        return {
            "extension": json.dumps({"base": {"cardType": "im"}}),
            "corpId": CORP,
            "spaceType": "IM_ROBOT",
            "userIdType": 1,
            "type": "actionCallback",
            "userId": user_id,
            "content": json.dumps({"cardPrivateData": private}, ensure_ascii=False),
            "spaceId": f"IM_ROBOT.{user_id}",
            "outTrackId": out_track_id,
        }

    def signed_card(self, doc: dict[str, Any] | bytes, timestamp_ms: int) -> tuple[dict[str, str], bytes]:
        """Headers and body of the card callback POST."""
        body = doc if isinstance(doc, bytes) else dumps(doc)
        ts = str(timestamp_ms)
        headers = {
            "Content-Type": "application/json",
            "x-ddpaas-signature-timestamp": ts,
            "x-ddpaas-signature": card_signature(ts, self.card_api_secret),
        }
        return headers, body
