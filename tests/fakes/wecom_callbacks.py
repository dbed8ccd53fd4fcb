"""Build WeCom callbacks exactly as WeCom sends them: inner XML (formats of /90239 and /90240), sealed in the
``<xml><ToUserName/><AgentID/><Encrypt/></xml>`` envelope with a msg_signature over (token, timestamp, nonce)."""

from __future__ import annotations

from bot.channels.wecom.crypto import WeComCrypto


def cdata(value: str) -> str:
    """``value`` as CDATA (a ``]]>`` inside is split across two sections, as XML requires)."""
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


class WeComSigner:
    """One WeCom app as seen from WeCom's side: builds inner callback XML and seals it."""

    def __init__(self, token: str, aes_key: str, corp_id: str, agent_id: int = 1000002) -> None:
        self.corp_id = corp_id
        self.agent_id = agent_id
        self.crypto = WeComCrypto(token, aes_key, corp_id)

    def _xml(self, from_user: str, create_time: int, msg_type: str, body: str) -> str:
        return (
            f"<xml><ToUserName>{cdata(self.corp_id)}</ToUserName>"
            f"<FromUserName>{cdata(from_user)}</FromUserName>"
            f"<CreateTime>{create_time}</CreateTime>"
            f"<MsgType>{cdata(msg_type)}</MsgType>"
            f"{body}"
            f"<AgentID>{self.agent_id}</AgentID></xml>"
        )

    def text(self, from_user: str, content: str, msg_id: int, create_time: int) -> str:
        return self._xml(from_user, create_time, "text", f"<Content>{cdata(content)}</Content><MsgId>{msg_id}</MsgId>")

    def location(
        self, from_user: str, latitude: float, longitude: float, label: str, msg_id: int, create_time: int
    ) -> str:
        body = (
            f"<Location_X>{latitude}</Location_X><Location_Y>{longitude}</Location_Y><Scale>15</Scale>"
            f"<Label>{cdata(label)}</Label><MsgId>{msg_id}</MsgId><AppType>{cdata('wxwork')}</AppType>"
        )
        return self._xml(from_user, create_time, "location", body)

    def image(self, from_user: str, media_id: str, msg_id: int, create_time: int) -> str:
        body = (
            f"<PicUrl>{cdata('https://wework.qpic.cn/x/0')}</PicUrl><MediaId>{cdata(media_id)}</MediaId>"
            f"<MsgId>{msg_id}</MsgId>"
        )
        return self._xml(from_user, create_time, "image", body)

    def event(self, from_user: str, event: str, create_time: int, extra: str = "") -> str:
        """Any event, e.g. ``subscribe`` or ``click`` (``extra`` is appended inside ``<xml>``)."""
        return self._xml(from_user, create_time, "event", f"<Event>{cdata(event)}</Event>{extra}")

    def location_event(
        self, from_user: str, latitude: float, longitude: float, precision: float, create_time: int
    ) -> str:
        extra = (
            f"<Latitude>{latitude}</Latitude><Longitude>{longitude}</Longitude>"
            f"<Precision>{precision:.3f}</Precision><AppType>{cdata('wxwork')}</AppType>"
        )
        return self.event(from_user, "LOCATION", create_time, extra)

    def enter_agent(self, from_user: str, create_time: int) -> str:
        return self.event(from_user, "enter_agent", create_time, f"<EventKey>{cdata('')}</EventKey>")

    def card_event(
        self,
        from_user: str,
        event_key: str,
        task_id: str,
        response_code: str,
        create_time: int,
        selected: dict[str, list[str]] | None = None,
    ) -> str:
        items = "".join(
            f"<SelectedItem><QuestionKey>{cdata(question)}</QuestionKey><OptionIds>"
            + "".join(f"<OptionId>{cdata(o)}</OptionId>" for o in options)
            + "</OptionIds></SelectedItem>"
            for question, options in (selected or {}).items()
        )
        extra = (
            f"<EventKey>{cdata(event_key)}</EventKey><TaskId>{cdata(task_id)}</TaskId>"
            f"<CardType>{cdata('button_interaction')}</CardType><ResponseCode>{cdata(response_code)}</ResponseCode>"
            + (f"<SelectedItems>{items}</SelectedItems>" if selected else "")
        )
        return self.event(from_user, "template_card_event", create_time, extra)

    def envelope(self, inner_xml: str, timestamp: int | str, nonce: str) -> tuple[dict[str, str], bytes]:
        """(query parameters, POST body) of the callback carrying ``inner_xml``."""
        encrypt, signature = self.crypto.encrypt(inner_xml, nonce, str(timestamp))
        body = (
            f"<xml><ToUserName>{cdata(self.corp_id)}</ToUserName><AgentID>{cdata(str(self.agent_id))}</AgentID>"
            f"<Encrypt>{cdata(encrypt)}</Encrypt></xml>"
        )
        query = {"msg_signature": signature, "timestamp": str(timestamp), "nonce": nonce}
        return query, body.encode()

    def url_verification(self, echo: str, timestamp: int | str, nonce: str) -> dict[str, str]:
        """Query parameters of the GET that verifies the callback URL; the answer must be ``echo``."""
        echostr, signature = self.crypto.encrypt(echo, nonce, str(timestamp))
        return {"msg_signature": signature, "timestamp": str(timestamp), "nonce": nonce, "echostr": echostr}
