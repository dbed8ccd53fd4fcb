from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.parsing.visit_parser import (
    VISIT_FIELDS,
    Objection,
    ParsedVisit,
    ParseIssue,
    parse_field_value,
    parse_visit_line,
    resolve_key,
    strip_keyword,
)

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 22, 14, 30, tzinfo=TZ)  # Sunday
OBJECTIONS = {
    "价格": ["price", "价钱", "费用", "贵"],
    "交付": ["delivery", "货期", "供货"],
    "资质": ["qualification", "证照", "授权"],
    "其他": ["other", "其它"],
}


def at(month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=TZ)


def visit(*issues: ParseIssue, **fields: Any) -> ParsedVisit:
    return ParsedVisit(**fields, issues=list(issues))


CASES: list[tuple[str, ParsedVisit]] = [
    # the canonical example and its punctuation variants
    (
        "拜访 浙一 骨科 张主任 主题:脊柱耗材新品 异议:价格 下一步:送样",
        visit(
            customer="浙一",
            ward="骨科",
            contacts=["张主任"],
            topics="脊柱耗材新品",
            objection="价格",
            next_step="送样",
        ),
    ),
    (
        "拜访　浙一　骨科　张主任　主题：脊柱耗材新品　异议：价格",
        visit(customer="浙一", ward="骨科", contacts=["张主任"], topics="脊柱耗材新品", objection="价格"),
    ),
    (
        "拜访 浙一 骨科 主题：新品介绍 异议:价格 下一步：送样",
        visit(customer="浙一", ward="骨科", topics="新品介绍", objection="价格", next_step="送样"),
    ),
    (
        "拜访 浙一 骨科 异议 : 价格 下一步: 送样",
        visit(customer="浙一", ward="骨科", objection="价格", next_step="送样"),
    ),
    (
        "拜访 浙一，骨科；张主任，异议：价格",
        visit(customer="浙一", ward="骨科", contacts=["张主任"], objection="价格"),
    ),
    ("拜访 浙一 骨科 下一步:送样。", visit(customer="浙一", ward="骨科", next_step="送样")),
    ("拜访 浙一 异议:价格下一步:送样", visit(customer="浙一", objection="价格", next_step="送样")),
    # keyword handling
    ("拜访浙一 骨科", visit(customer="浙一", ward="骨科")),
    (
        "浙一 骨科 张主任 异议:货期",
        visit(customer="浙一", ward="骨科", contacts=["张主任"], objection="交付"),
    ),
    ("VISIT ZJU-1 ICU", visit(customer="ZJU-1", ward="ICU")),
    ("拜访", visit()),
    ("", visit()),
    # English lines
    (
        "visit ZJU-1 orthopedics Dr.Zhang topic:new spine implants objection:price next:send samples",
        visit(
            customer="ZJU-1",
            ward="orthopedics",
            contacts=["Dr.Zhang"],
            topics="new spine implants",
            objection="价格",
            next_step="send samples",
        ),
    ),
    (
        "Visit ZJU-1 cardiology Dr.Li Topic:stent follow-up Objection:Delivery Next:call back",
        visit(
            customer="ZJU-1",
            ward="cardiology",
            contacts=["Dr.Li"],
            topics="stent follow-up",
            objection="交付",
            next_step="call back",
        ),
    ),
    (
        "visit Ruijin Hospital ICU Dr. Chen",
        visit(customer="Ruijin Hospital", ward="ICU", contacts=["Dr. Chen"]),
    ),
    (
        "visit ZJU-1 lab yesterday 3pm Dr.Wu",
        visit(customer="ZJU-1", ward="lab", contacts=["Dr.Wu"], visited_at=at(11, 21, 15)),
    ),
    (
        "visit ZJU-1 when:last monday objection:qualification",
        visit(customer="ZJU-1", visited_at=at(11, 16), objection="资质"),
    ),
    (
        "visit hospital:ZJU-1 dept:ICU contact:Dr.Wang",
        visit(customer="ZJU-1", ward="ICU", contacts=["Dr.Wang"]),
    ),
    ("visit ZJU-1 next_step:demo on site", visit(customer="ZJU-1", next_step="demo on site")),
    ("visit ZJU-1 objection:ＰＲＩＣＥ", visit(customer="ZJU-1", objection="价格")),
    (
        "visit ZJU-1 products:Infuse, infuse, PEEK cage",
        visit(customer="ZJU-1", products=["Infuse", "PEEK cage"]),
    ),
    # values run until the next key
    (
        "拜访 浙一 骨科 下一步:送样 并约下周复访",
        visit(customer="浙一", ward="骨科", next_step="送样 并约下周复访"),
    ),
    ("拜访 浙一 下一步:周三 15:00 复访", visit(customer="浙一", next_step="周三 15:00 复访")),
    (
        "拜访 浙一 骨科 态度:积极 承诺:下月提交进院申请",
        visit(customer="浙一", ward="骨科", attitude="积极", commitments="下月提交进院申请"),
    ),
    ("拜访 浙一 客户态度:中立", visit(customer="浙一", attitude="中立")),
    (
        "拜访 客户:浙一 科室:骨科 联系人:张主任",
        visit(customer="浙一", ward="骨科", contacts=["张主任"]),
    ),
    # dates and times, positional and keyed
    (
        "拜访 浙一 骨科 昨天 张主任",
        visit(customer="浙一", ward="骨科", contacts=["张主任"], visited_at=at(11, 21)),
    ),
    (
        "拜访 浙一 昨天下午3点 骨科 张主任",
        visit(customer="浙一", ward="骨科", contacts=["张主任"], visited_at=at(11, 21, 15)),
    ),
    (
        "拜访 浙一 骨科 昨天 15:00 张主任",
        visit(customer="浙一", ward="骨科", contacts=["张主任"], visited_at=at(11, 21, 15)),
    ),
    (
        "拜访 浙一 上周三 心内科 李医生",
        visit(customer="浙一", ward="心内科", contacts=["李医生"], visited_at=at(11, 11)),
    ),
    ("拜访 浙一 11月20日 骨科", visit(customer="浙一", ward="骨科", visited_at=at(11, 20))),
    ("拜访 浙一 20号 骨科", visit(customer="浙一", ward="骨科", visited_at=at(11, 20))),
    ("拜访 浙一 周五 骨科", visit(customer="浙一", ward="骨科", visited_at=at(11, 20))),
    ("拜访 浙一 今天 骨科", visit(customer="浙一", ward="骨科", visited_at=NOW)),
    ("拜访 浙一 骨科 时间:昨天下午3点", visit(customer="浙一", ward="骨科", visited_at=at(11, 21, 15))),
    (
        "拜访 浙一 时间:2026-11-20 09:30 异议:价格",
        visit(customer="浙一", visited_at=at(11, 20, 9, 30), objection="价格"),
    ),
    ("拜访 浙一 时间:昨天　１５：００", visit(customer="浙一", visited_at=at(11, 21, 15))),
    (
        "拜访 浙一 时间:上辈子",
        visit(ParseIssue("visited_at", "bad_time", "上辈子"), customer="浙一"),
    ),
    (
        "拜访 浙一 昨天 时间:前天",
        visit(ParseIssue("visited_at", "duplicate_key", "前天"), customer="浙一", visited_at=at(11, 20)),
    ),
    # positional heuristics
    ("拜访 协和 内分泌 张主任", visit(customer="协和", ward="内分泌", contacts=["张主任"])),
    ("拜访 协和 骨科 老王", visit(customer="协和", ward="骨科", contacts=["老王"])),
    ("拜访 浙一 张三 骨科", visit(customer="浙一", ward="骨科", contacts=["张三"])),
    (
        "拜访 骨科 浙江省人民医院 张主任",
        visit(customer="浙江省人民医院", ward="骨科", contacts=["张主任"]),
    ),
    (
        "拜访 华山 ICU 陈护士长 主题:镇静用药",
        visit(customer="华山", ward="ICU", contacts=["陈护士长"], topics="镇静用药"),
    ),
    ("拜访 瑞金 内镜中心 周主任", visit(customer="瑞金", ward="内镜中心", contacts=["周主任"])),
    ("拜访 华西医学中心 麻醉科", visit(customer="华西医学中心", ward="麻醉科")),
    ("拜访 浙一 骨科3病区", visit(customer="浙一", ward="骨科3病区")),
    ("拜访 浙一 骨科 3病区", visit(customer="浙一", ward="骨科 3病区")),
    ("拜访 浙一 手术室 刘院长", visit(customer="浙一", ward="手术室", contacts=["刘院长"])),
    # multiple contacts and list fields
    ("拜访 浙一 骨科 张主任、李医生", visit(customer="浙一", ward="骨科", contacts=["张主任", "李医生"])),
    ("拜访 浙一 骨科 张主任和王护士长", visit(customer="浙一", ward="骨科", contacts=["张主任", "王护士长"])),
    ("拜访 浙一 骨科 张主任 李主任", visit(customer="浙一", ward="骨科", contacts=["张主任", "李主任"])),
    (
        "拜访 浙一 联系人:张主任,李医生/王老师",
        visit(customer="浙一", contacts=["张主任", "李医生", "王老师"]),
    ),
    ("拜访 浙一 联系人:张主任、张主任、李医生", visit(customer="浙一", contacts=["张主任", "李医生"])),
    ("拜访 浙一 联系人:张和平", visit(customer="浙一", contacts=["张和平"])),
    (
        "拜访 浙一 产品:钉棒系统、融合器+骨水泥",
        visit(customer="浙一", products=["钉棒系统", "融合器", "骨水泥"]),
    ),
    ("拜访 浙一 产品:钉棒和融合器", visit(customer="浙一", products=["钉棒和融合器"])),
    # objections
    ("拜访 浙一 异议:贵", visit(customer="浙一", objection="价格")),
    ("拜访 浙一 异议:其它", visit(customer="浙一", objection="其他")),
    # free text is the catch-all objection with the text as its note (issue 11)
    (
        "拜访 浙一 骨科 异议:太贵了",
        visit(customer="浙一", ward="骨科", objection="其他", objection_note="太贵了"),
    ),
    (
        "拜访 浙一 骨科 异议:无",
        visit(ParseIssue("objection", "bad_objection", "无"), customer="浙一", ward="骨科"),
    ),
    # duplicates, empty values, unknown keys
    (
        "拜访 浙一 异议:价格 异议:货期",
        visit(ParseIssue("objection", "duplicate_key", "货期"), customer="浙一", objection="交付"),
    ),
    (
        "拜访 浙一 异议:价格 异议:不知道",
        visit(
            ParseIssue("objection", "duplicate_key", "不知道"),
            customer="浙一",
            objection="其他",
            objection_note="不知道",
        ),
    ),
    (
        "拜访 浙一 客户:浙二",
        visit(ParseIssue("customer", "duplicate_key", "浙二"), customer="浙二"),
    ),
    (
        "拜访 浙一 异议: 下一步:送样",
        visit(ParseIssue("objection", "empty_value", ""), customer="浙一", next_step="送样"),
    ),
    (
        "拜访 浙一 骨科 异议:",
        visit(ParseIssue("objection", "empty_value", ""), customer="浙一", ward="骨科"),
    ),
    (
        "拜访 浙一 备注:明天再来 下一步:送样",
        visit(ParseIssue(None, "unknown_key", "备注"), customer="浙一", next_step="送样"),
    ),
    (
        "拜访 浙一 异意:价格",
        visit(ParseIssue(None, "unknown_key", "异意"), customer="浙一"),
    ),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[text or "<empty>" for text, _ in CASES])
def test_parse_visit_line(text: str, expected: ParsedVisit) -> None:
    assert parse_visit_line(text, NOW, OBJECTIONS) == expected


def test_case_table_is_large_enough() -> None:
    assert len(CASES) >= 45


def test_present_lists_given_fields() -> None:
    parsed = parse_visit_line("拜访 浙一 骨科 张主任 主题:脊柱耗材新品 异议:价格 下一步:送样", NOW, OBJECTIONS)
    assert parsed.present() == {"customer", "ward", "contacts", "topics", "objection", "next_step"}
    assert ParsedVisit().present() == set()
    assert set(VISIT_FIELDS) >= parsed.present()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("拜访 浙一 骨科", (True, "浙一 骨科")),
        ("拜访浙一 骨科", (True, "浙一 骨科")),
        ("  拜访：浙一", (True, "浙一")),
        ("visit ZJU-1", (True, "ZJU-1")),
        ("VISIT ZJU-1", (True, "ZJU-1")),
        ("ｖｉｓｉｔ ZJU-1", (True, "ZJU-1")),
        ("visit", (True, "")),
        ("visitor center", (False, "visitor center")),
        ("visits ZJU-1", (False, "visits ZJU-1")),
        ("浙一 拜访 骨科", (False, "浙一 拜访 骨科")),
    ],
)
def test_strip_keyword(text: str, expected: tuple[bool, str]) -> None:
    assert strip_keyword(text) == expected


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("异议", "objection"),
        ("Objection", "objection"),
        ("next", "next_step"),
        ("next-step", "next_step"),
        ("下一步", "next_step"),
        ("客户态度", "attitude"),
        ("医院", "customer"),
        ("DEPT", "ward"),
        ("对象", "contacts"),
        ("话题", "topics"),
        ("when", "visited_at"),
        ("备注", None),
        ("", None),
    ],
)
def test_resolve_key(key: str, expected: str | None) -> None:
    assert resolve_key(key) == expected


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("contacts", "张主任、李医生", (["张主任", "李医生"], None)),
        ("products", "钉棒 / 融合器", (["钉棒", "融合器"], None)),
        ("visited_at", "昨天下午3点", (at(11, 21, 15), None)),
        ("visited_at", "不记得了", (None, ParseIssue("visited_at", "bad_time", "不记得了"))),
        ("objection", "价钱", (Objection("价格"), None)),
        ("objection", " Delivery ", (Objection("交付"), None)),
        ("objection", "其他 在走招标", (Objection("其他", "在走招标"), None)),
        ("objection", "无", (None, ParseIssue("objection", "bad_objection", "无"))),
        ("topics", "  新品　介绍 ", ("新品 介绍", None)),
        ("topics", "   ", (None, ParseIssue("topics", "empty_value", ""))),
        ("contacts", "、、", (None, ParseIssue("contacts", "empty_value", "、、"))),
    ],
)
def test_parse_field_value(field: str, value: str, expected: tuple[object, ParseIssue | None]) -> None:
    assert parse_field_value(field, value, NOW, OBJECTIONS) == expected


def test_parse_field_value_rejects_unknown_field() -> None:
    with pytest.raises(ValueError, match="unknown visit field"):
        parse_field_value("mood", "好", NOW, OBJECTIONS)
