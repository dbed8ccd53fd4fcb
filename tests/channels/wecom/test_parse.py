"""parse_callback on the samples of the WeCom docs (/90239 messages, /90240 events) and on malformed or hostile XML."""

from __future__ import annotations

import pytest
import xmltodict

from bot.channels.wecom.crypto import CallbackRejected
from bot.channels.wecom.parse import Ignored, parse_callback, parse_callback_and_code, parse_xml
from bot.core.events import CardAction, EnterChat, LocationShared, MediaMessage, TextMessage

CORP = "toUser"  # the docs' samples put this placeholder where the CorpID goes
AGENT = 1


def local_date(ts: int) -> str:
    """A stand-in for the org calendar that shows which instant it was asked about."""
    return f"day-of-{ts}"


def parse(xml: str, *, corp_id: str = CORP, agent_id: int = AGENT) -> object:
    return parse_callback(xml, corp_id=corp_id, agent_id=agent_id, local_date=local_date)


def rejected(xml: str) -> CallbackRejected:
    with pytest.raises(CallbackRejected) as err:
        parse(xml)
    assert err.value.status == 400
    return err.value


TEXT = """<xml>
 <ToUserName><![CDATA[toUser]]></ToUserName>
 <FromUserName><![CDATA[fromUser]]></FromUserName>
 <CreateTime>1348831860</CreateTime>
 <MsgType><![CDATA[text]]></MsgType>
 <Content><![CDATA[this is a test]]></Content>
 <MsgId>1234567890123456</MsgId>
 <AgentID>1</AgentID>
</xml>"""

IMAGE = """<xml>
 <ToUserName><![CDATA[toUser]]></ToUserName>
 <FromUserName><![CDATA[fromUser]]></FromUserName>
 <CreateTime>1348831860</CreateTime>
 <MsgType><![CDATA[image]]></MsgType>
 <PicUrl><![CDATA[this is a url]]></PicUrl>
 <MediaId><![CDATA[media_id]]></MediaId>
 <MsgId>1234567890123456</MsgId>
 <AgentID>1</AgentID>
</xml>"""

VOICE = """<xml>
 <ToUserName><![CDATA[toUser]]></ToUserName>
 <FromUserName><![CDATA[fromUser]]></FromUserName>
 <CreateTime>1357290913</CreateTime>
 <MsgType><![CDATA[voice]]></MsgType>
 <MediaId><![CDATA[media_id]]></MediaId>
 <Format><![CDATA[Format]]></Format>
 <MsgId>1234567890123456</MsgId>
 <AgentID>1</AgentID>
</xml>"""

VIDEO = """<xml>
 <ToUserName><![CDATA[toUser]]></ToUserName>
 <FromUserName><![CDATA[fromUser]]></FromUserName>
 <CreateTime>1357290913</CreateTime>
 <MsgType><![CDATA[video]]></MsgType>
 <MediaId><![CDATA[media_id]]></MediaId>
 <ThumbMediaId><![CDATA[thumb_media_id]]></ThumbMediaId>
 <MsgId>1234567890123456</MsgId>
 <AgentID>1</AgentID>
</xml>"""

LOCATION = """<xml>
 <ToUserName><![CDATA[toUser]]></ToUserName>
 <FromUserName><![CDATA[fromUser]]></FromUserName>
 <CreateTime>1351776360</CreateTime>
 <MsgType><![CDATA[location]]></MsgType>
 <Location_X>23.134</Location_X>
 <Location_Y>113.358</Location_Y>
 <Scale>20</Scale>
 <Label><![CDATA[位置信息]]></Label>
 <MsgId>1234567890123456</MsgId>
 <AgentID>1</AgentID>
 <AppType><![CDATA[wxwork]]></AppType>
</xml>"""

LINK = """<xml>
 <ToUserName><![CDATA[toUser]]></ToUserName>
 <FromUserName><![CDATA[fromUser]]></FromUserName>
 <CreateTime>1348831860</CreateTime>
 <MsgType><![CDATA[link]]></MsgType>
 <Title><![CDATA[this is a title！]]></Title>
 <Description><![CDATA[this is a description！]]></Description>
 <Url><![CDATA[URL]]></Url>
 <PicUrl><![CDATA[this is a url]]></PicUrl>
 <MsgId>1234567890123456</MsgId>
 <AgentID>1</AgentID>
</xml>"""

LOCATION_EVENT = """<xml>
 <ToUserName><![CDATA[toUser]]></ToUserName>
 <FromUserName><![CDATA[FromUser]]></FromUserName>
 <CreateTime>123456789</CreateTime>
 <MsgType><![CDATA[event]]></MsgType>
 <Event><![CDATA[LOCATION]]></Event>
 <Latitude>23.104</Latitude>
 <Longitude>113.320</Longitude>
 <Precision>65.000</Precision>
 <AgentID>1</AgentID>
 <AppType><![CDATA[wxwork]]></AppType>
</xml>"""

ENTER_AGENT = """<xml><ToUserName><![CDATA[toUser]]></ToUserName>
<FromUserName><![CDATA[FromUser]]></FromUserName>
<CreateTime>1408091189</CreateTime>
<MsgType><![CDATA[event]]></MsgType>
<Event><![CDATA[enter_agent]]></Event>
<EventKey><![CDATA[]]></EventKey>
<AgentID>1</AgentID>
</xml>"""

CARD_EVENT = """<xml>
<ToUserName><![CDATA[toUser]]></ToUserName>
<FromUserName><![CDATA[FromUser]]></FromUserName>
<CreateTime>123456789</CreateTime>
<MsgType><![CDATA[event]]></MsgType>
<Event><![CDATA[template_card_event]]></Event>
<EventKey><![CDATA[key111]]></EventKey>
<TaskId><![CDATA[taskid111]]></TaskId>
<CardType><![CDATA[text_notice]]></CardType>
<ResponseCode><![CDATA[ResponseCode]]></ResponseCode>
<AgentID>1</AgentID>
<SelectedItems>
 <SelectedItem>
 <QuestionKey><![CDATA[QuestionKey1]]></QuestionKey>
 <OptionIds>
 <OptionId><![CDATA[OptionId1]]></OptionId>
 <OptionId><![CDATA[OptionId2]]></OptionId>
 </OptionIds>
 </SelectedItem>
 <SelectedItem>
 <QuestionKey><![CDATA[QuestionKey2]]></QuestionKey>
 <OptionIds>
 <OptionId><![CDATA[OptionId3]]></OptionId>
 <OptionId><![CDATA[OptionId4]]></OptionId>
 </OptionIds>
 </SelectedItem>
</SelectedItems>
</xml>"""

BUTTON_EVENT = """<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName><![CDATA[rep01]]></FromUserName>
<CreateTime>1795399200</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[template_card_event]]></Event>
<EventKey><![CDATA[v1:approve:42]]></EventKey><TaskId><![CDATA[card-42]]></TaskId>
<CardType><![CDATA[button_interaction]]></CardType><ResponseCode><![CDATA[rc-abc]]></ResponseCode>
<AgentID>1</AgentID></xml>"""

SINGLE_OPTION_EVENT = """<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName><![CDATA[rep01]]></FromUserName>
<CreateTime>1795399200</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[template_card_event]]></Event>
<EventKey><![CDATA[submit]]></EventKey><TaskId><![CDATA[vote-1]]></TaskId>
<CardType><![CDATA[vote_interaction]]></CardType><ResponseCode><![CDATA[rc]]></ResponseCode><AgentID>1</AgentID>
<SelectedItems><SelectedItem><QuestionKey><![CDATA[q]]></QuestionKey>
<OptionIds><OptionId><![CDATA[only]]></OptionId></OptionIds></SelectedItem></SelectedItems></xml>"""

SUBSCRIBE = """<xml>
  <ToUserName><![CDATA[toUser]]></ToUserName>
  <FromUserName><![CDATA[UserID]]></FromUserName>
  <CreateTime>1348831860</CreateTime>
  <MsgType><![CDATA[event]]></MsgType>
  <Event><![CDATA[subscribe]]></Event>
  <AgentID>1</AgentID>
</xml>"""

CLICK = """<xml>
  <ToUserName><![CDATA[toUser]]></ToUserName>
  <FromUserName><![CDATA[FromUser]]></FromUserName>
  <CreateTime>123456789</CreateTime>
  <MsgType><![CDATA[event]]></MsgType>
  <Event><![CDATA[click]]></Event>
  <EventKey><![CDATA[EVENTKEY]]></EventKey>
  <AgentID>1</AgentID>
</xml>"""

VIEW = CLICK.replace("[click]", "[view]").replace("EVENTKEY", "www.qq.com")

CARD_MENU_EVENT = """<xml>
<ToUserName><![CDATA[toUser]]></ToUserName>
<FromUserName><![CDATA[FromUser]]></FromUserName>
<CreateTime>123456789</CreateTime>
<MsgType><![CDATA[event]]></MsgType>
<Event><![CDATA[template_card_menu_event]]></Event>
<EventKey><![CDATA[key111]]></EventKey>
<TaskId><![CDATA[taskid111]]></TaskId>
<CardType><![CDATA[text_notice]]></CardType>
<ResponseCode><![CDATA[ResponseCode]]></ResponseCode>
<AgentID>1</AgentID>
</xml>"""

CHANGE_CONTACT = """<xml>
  <ToUserName><![CDATA[toUser]]></ToUserName>
  <FromUserName><![CDATA[sys]]></FromUserName>
  <CreateTime>1403610513</CreateTime>
  <MsgType><![CDATA[event]]></MsgType>
  <Event><![CDATA[change_contact]]></Event>
  <ChangeType>create_party</ChangeType>
  <Id>2</Id>
  <Name><![CDATA[张三]]></Name>
  <ParentId>1</ParentId>
  <Order>1</Order>
</xml>"""

# The decrypted official vector (https://developer.work.weixin.qq.com/document/path/90968).
OFFICIAL = (
    "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>\n<FromUserName><![CDATA[mycreate]]></FromUserName>\n"
    "<CreateTime>1409659813</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[hello]]></Content>\n"
    "<MsgId>4561255354251345929</MsgId>\n<AgentID>218</AgentID>\n</xml>"
)


def test_text() -> None:
    assert parse(TEXT) == TextMessage(
        channel="wecom", sender="fromUser", dedup_key="msg:1234567890123456", text="this is a test"
    )


def test_official_vector_text() -> None:
    event = parse(OFFICIAL, corp_id="wx5823bf96d3bd56c7", agent_id=218)
    assert event == TextMessage(channel="wecom", sender="mycreate", dedup_key="msg:4561255354251345929", text="hello")


def test_text_keeps_escapes_and_split_cdata() -> None:
    xml = TEXT.replace("<![CDATA[this is a test]]>", "A &amp; B <![CDATA[x]]]]><![CDATA[>y]]>")
    event = parse(xml)
    assert isinstance(event, TextMessage)
    assert event.text == "A & B x]]>y"


def test_location_message() -> None:
    assert parse(LOCATION) == LocationShared(
        channel="wecom",
        sender="fromUser",
        dedup_key="msg:1234567890123456",
        latitude=23.134,
        longitude=113.358,
        label="位置信息",
    )


@pytest.mark.parametrize(("xml", "media_type"), [(IMAGE, "image"), (VOICE, "voice"), (VIDEO, "video")])
def test_media_messages(xml: str, media_type: str) -> None:
    event = parse(xml)
    assert isinstance(event, MediaMessage)
    assert (event.media_type, event.media_id, event.dedup_key) == (media_type, "media_id", "msg:1234567890123456")


def test_file_message() -> None:
    xml = IMAGE.replace("[image]", "[file]").replace("<PicUrl><![CDATA[this is a url]]></PicUrl>", "")
    event = parse(xml)
    assert isinstance(event, MediaMessage)
    assert event.media_type == "file"


def test_location_event_is_passive_with_precision() -> None:
    assert parse(LOCATION_EVENT) == LocationShared(
        channel="wecom",
        sender="FromUser",
        dedup_key="evt:FromUser:123456789:LOCATION:",
        latitude=23.104,
        longitude=113.32,
        precision_m=65.0,
        passive=True,
    )


def test_enter_agent_once_per_local_day() -> None:
    assert parse(ENTER_AGENT) == EnterChat(
        channel="wecom", sender="FromUser", dedup_key="enter:FromUser:day-of-1408091189"
    )


def test_template_card_event_with_selections() -> None:
    assert parse(CARD_EVENT) == CardAction(
        channel="wecom",
        sender="FromUser",
        dedup_key="evt:FromUser:123456789:template_card_event:taskid111/key111",
        payload="key111",
        card_ref="taskid111",
        selected={"QuestionKey1": ["OptionId1", "OptionId2"], "QuestionKey2": ["OptionId3", "OptionId4"]},
    )


def test_button_card_event() -> None:
    event, code = parse_callback_and_code(BUTTON_EVENT, corp_id=CORP, agent_id=AGENT, local_date=local_date)
    assert isinstance(event, CardAction)
    assert (event.payload, event.card_ref, code, event.selected) == ("v1:approve:42", "card-42", "rc-abc", {})
    # The platform's token stays in the channel: the neutral event does not carry it.
    assert "rc-abc" not in str(event.model_dump())


def test_only_a_card_event_has_a_code() -> None:
    assert parse_callback_and_code(TEXT, corp_id=CORP, agent_id=AGENT, local_date=local_date)[1] == ""


def test_single_option_is_still_a_list() -> None:
    event = parse(SINGLE_OPTION_EVENT)
    assert isinstance(event, CardAction)
    assert event.selected == {"q": ["only"]}


def test_long_event_key_dedup_fits_the_column() -> None:
    key = "k" * 1024
    event = parse(BUTTON_EVENT.replace("v1:approve:42", key))
    assert isinstance(event, CardAction)
    assert event.payload == key
    assert len(event.dedup_key) <= 200
    other = parse(BUTTON_EVENT.replace("v1:approve:42", key[:-1] + "j"))
    assert isinstance(other, CardAction)
    assert other.dedup_key != event.dedup_key


@pytest.mark.parametrize(
    "xml",
    [
        pytest.param(SUBSCRIBE, id="subscribe"),
        pytest.param(CLICK, id="click"),
        pytest.param(VIEW, id="view"),
        pytest.param(CARD_MENU_EVENT, id="template_card_menu_event"),
        pytest.param(CHANGE_CONTACT, id="change_contact"),
        pytest.param(LINK, id="link"),
        pytest.param(TEXT.replace("[text]", "[miniprogram]"), id="unknown-msgtype"),
        pytest.param(SUBSCRIBE.replace("<CreateTime>1348831860</CreateTime>", ""), id="ignored-event-missing-fields"),
    ],
)
def test_unhandled_types_are_ignored(xml: str) -> None:
    assert isinstance(parse(xml), Ignored)


def test_other_agent_is_ignored() -> None:
    result = parse(TEXT, agent_id=1000002)
    assert isinstance(result, Ignored)
    assert "agent" in result.reason


def test_other_corp_is_ignored() -> None:
    assert isinstance(parse(TEXT, corp_id="wwothercorp"), Ignored)


@pytest.mark.parametrize(
    "xml",
    [
        pytest.param('<!DOCTYPE xml [<!ENTITY e "boom">]>' + TEXT.replace("this is a test", "&e;"), id="entity"),
        pytest.param(
            '<!DOCTYPE xml [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
            + TEXT.replace("<![CDATA[this is a test]]>", "&lol2;"),
            id="billion-laughs",
        ),
        pytest.param('<!DOCTYPE xml SYSTEM "http://127.0.0.1:1/evil.dtd">' + TEXT, id="external-dtd"),
        pytest.param('<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>' + TEXT, id="xxe"),
        pytest.param("<!DOCTYPE xml>" + TEXT, id="bare-doctype"),
    ],
)
def test_dtd_and_entities_rejected(xml: str) -> None:
    assert "DTD" in rejected(xml).reason


@pytest.mark.parametrize(
    ("xml", "why"),
    [
        pytest.param(TEXT[:-3], "malformed", id="truncated"),
        pytest.param("", "malformed", id="empty"),
        pytest.param("not xml", "malformed", id="garbage"),
        pytest.param(TEXT.replace("<xml>", "<root>").replace("</xml>", "</root>"), "root", id="wrong-root"),
        pytest.param("<xml>text only</xml>", "root", id="root-without-children"),
        pytest.param(TEXT.replace("<MsgId>1234567890123456</MsgId>", ""), "MsgId", id="no-msgid"),
        pytest.param(TEXT.replace("1234567890123456", "12ab"), "MsgId", id="msgid-not-integer"),
        pytest.param(TEXT.replace("1348831860", "-1"), "CreateTime", id="negative-createtime"),
        pytest.param(TEXT.replace("1348831860", "1e9"), "CreateTime", id="createtime-float"),
        pytest.param(TEXT.replace("<AgentID>1</AgentID>", "<AgentID>one</AgentID>"), "AgentID", id="agentid"),
        pytest.param(TEXT.replace("<![CDATA[fromUser]]>", ""), "FromUserName", id="empty-sender"),
        pytest.param(TEXT.replace("fromUser", "u" * 65), "FromUserName", id="sender-too-long"),
        pytest.param(TEXT.replace("<MsgType><![CDATA[text]]></MsgType>", ""), "MsgType", id="no-msgtype"),
        pytest.param(TEXT.replace("<Content>", "<Content>a</Content><Content>"), "Content", id="repeated-field"),
        pytest.param(TEXT.replace("<Content><![CDATA[this is a test]]></Content>", ""), "Content", id="no-content"),
        pytest.param(TEXT.replace("<![CDATA[this is a test]]>", "<b>x</b>"), "Content", id="nested-content"),
        pytest.param(LOCATION.replace("23.134", "abc"), "Location_X", id="latitude-not-number"),
        pytest.param(LOCATION.replace("23.134", "nan"), "Location_X", id="latitude-nan"),
        pytest.param(LOCATION.replace("23.134", "91"), "latitude", id="latitude-out-of-range"),
        pytest.param(LOCATION_EVENT.replace("<Longitude>113.320</Longitude>", ""), "Longitude", id="no-longitude"),
        pytest.param(LOCATION_EVENT.replace("65.000", "x"), "Precision", id="precision-not-number"),
        pytest.param(IMAGE.replace("<MediaId><![CDATA[media_id]]></MediaId>", ""), "MediaId", id="no-mediaid"),
        pytest.param(BUTTON_EVENT.replace("<EventKey><![CDATA[v1:approve:42]]></EventKey>", ""), "EventKey", id="key"),
        pytest.param(
            CARD_EVENT.replace("<QuestionKey><![CDATA[QuestionKey1]]></QuestionKey>", ""), "QuestionKey", id="question"
        ),
        pytest.param(ENTER_AGENT.replace("1408091189", "soon"), "CreateTime", id="enter-createtime"),
    ],
)
def test_malformed_callbacks_rejected(xml: str, why: str) -> None:
    assert why in rejected(xml).reason


def test_rejection_reason_does_not_quote_the_payload() -> None:
    reason = rejected(TEXT.replace("1234567890123456", "SECRET-CONTENT")).reason
    assert "SECRET" not in reason


def test_the_same_button_on_two_cards_in_one_second_is_two_taps() -> None:
    def tap(task_id: str) -> str:
        xml = (
            "<xml><ToUserName>wx5823bf96d3bd56c7</ToUserName><FromUserName>rep01</FromUserName>"
            "<CreateTime>1700000000</CreateTime><MsgType>event</MsgType><Event>template_card_event</Event>"
            f"<EventKey>vc|abc|submit</EventKey><TaskId>{task_id}</TaskId><CardType>button_interaction</CardType>"
            "<ResponseCode>rc</ResponseCode><AgentID>1000002</AgentID></xml>"
        )
        event = parse_callback(xml, corp_id="wx5823bf96d3bd56c7", agent_id=1000002, local_date=lambda _: "")
        assert not isinstance(event, Ignored)
        return event.dedup_key

    assert tap("card-1") != tap("card-1-r9")
    assert tap("card-1") == tap("card-1")


@pytest.mark.parametrize(
    "xml",
    [
        pytest.param("<xml><A>1</A><B><![CDATA[ padded ]]></B><C/><D></D><E>  </E></xml>", id="text-empty-blank"),
        pytest.param("<xml><A>1</A><A>2</A><A>3</A></xml>", id="repeated"),
        pytest.param("<xml> before <A>1</A> after </xml>", id="mixed-text"),
        pytest.param("<xml><A k='v' j='w'>1</A><B k='v'/></xml>", id="attributes"),
        pytest.param("<xml>\n  <A>1</A>\n  <B><C>2</C> x <C>3</C></B>\n</xml>", id="nested-mixed"),
        pytest.param("<xml><A>a &amp; b &#20013;</A><B><!-- note -->x</B></xml>", id="references-comment"),
        pytest.param("<?xml version='1.0' encoding='gbk'?><xml><A>中文</A></xml>", id="declared-encoding"),
        pytest.param(
            "<xml><SelectedItems><SelectedItem><QuestionKey>q</QuestionKey><OptionIds><OptionId>1</OptionId>"
            "</OptionIds></SelectedItem></SelectedItems><OptionId>2</OptionId></xml>",
            id="force-list",
        ),
        pytest.param(TEXT, id="text-sample"),
        pytest.param(CARD_EVENT, id="card-sample"),
    ],
)
def test_parse_xml_gives_the_shape_xmltodict_gives(xml: str) -> None:
    force = ("SelectedItem", "OptionId")
    assert parse_xml(xml, force_list=force) == xmltodict.parse(xml, disable_entities=True, force_list=force)["xml"]


def test_doctype_text_inside_cdata_is_content() -> None:
    event = parse(TEXT.replace("this is a test", '<!DOCTYPE x [<!ENTITY e "y">]>'))
    assert isinstance(event, TextMessage)
    assert event.text == '<!DOCTYPE x [<!ENTITY e "y">]>'
