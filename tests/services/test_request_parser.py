"""One-line support requests: positional tokens, key:value pairs, dates that lean to the future."""

from __future__ import annotations

from datetime import date

import pytest

from bot.config import Settings
from bot.parsing.request_parser import parse_future_date, parse_request_line, place_loose

TODAY = date(2026, 12, 1)  # a Tuesday
TYPES = Settings().request_types
ZJU1_WARDS = ["骨科", "检验科", "器械科"]


def parse(type_key: str, text: str, wards: list[str] | None = ZJU1_WARDS) -> tuple[dict[str, str], list[str]]:
    rt = TYPES[type_key]
    parsed = parse_request_line(rt, text, TODAY)
    issues = [i.code for i in parsed.issues]
    issues += [i.code for i in place_loose(rt, parsed, wards, TODAY)]
    return parsed.values, issues


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "浙一 骨科 2026-12-03 器械:脊柱A包 备注:王主任主刀",
            {"customer": "浙一", "ward": "骨科", "surgery_date": "2026-12-03", "kit": "脊柱A包", "note": "王主任主刀"},
        ),
        ("浙一 2026-12-03 脊柱A包", {"customer": "浙一", "surgery_date": "2026-12-03", "kit": "脊柱A包"}),
        (
            "浙一 骨科 明天 脊柱A包",
            {"customer": "浙一", "ward": "骨科", "surgery_date": "2026-12-02", "kit": "脊柱A包"},
        ),
        (
            "浙一 骨科 12月3日 器械：脊柱A包",
            {"customer": "浙一", "ward": "骨科", "surgery_date": "2026-12-03", "kit": "脊柱A包"},
        ),
        (
            "浙一，骨科，12-03，脊柱 A包",
            {"customer": "浙一", "ward": "骨科", "surgery_date": "2026-12-03", "kit": "脊柱 A包"},
        ),
        ("浙一 周五 脊柱A包", {"customer": "浙一", "surgery_date": "2026-12-04", "kit": "脊柱A包"}),
        (
            "浙一 下周三 器械科 关节B包",
            {"customer": "浙一", "surgery_date": "2026-12-09", "ward": "器械科", "kit": "关节B包"},
        ),
        (
            "器械:脊柱A包 医院:浙二 科室:脊柱外科 日期:12/5",
            {"customer": "浙二", "ward": "脊柱外科", "surgery_date": "2026-12-05", "kit": "脊柱A包"},
        ),
        (
            "浙一 骨科 2026-12-03 kit:spine-A note:Dr Wang",
            {"customer": "浙一", "ward": "骨科", "surgery_date": "2026-12-03", "kit": "spine-A", "note": "Dr Wang"},
        ),
        (
            "ＺＪＵ１ 骨科 2026-12-03 器械:脊柱A包",
            {"customer": "ZJU1", "ward": "骨科", "surgery_date": "2026-12-03", "kit": "脊柱A包"},
        ),
        (
            "浙一 骨科 2026-12-03 器械:脊柱A包备注:王主任主刀",
            {"customer": "浙一", "ward": "骨科", "surgery_date": "2026-12-03", "kit": "脊柱A包", "note": "王主任主刀"},
        ),
        ("", {}),
    ],
)
def test_surgery_lines(text: str, expected: dict[str, str]) -> None:
    values, issues = parse("surgery_support", text)
    assert values == expected
    assert issues == []


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("浙一 骨科 2026-11-30 脊柱A包", "past_date"),
        ("浙一 骨科 昨天 脊柱A包", "past_date"),
        ("浙一 骨科 日期:下辈子 脊柱A包", "bad_date"),
        ("浙一 骨科 颜色:红 脊柱A包", "unknown_key"),
        ("浙一 骨科 器械: 备注:x", "empty_value"),
        ("浙一 骨科 器械:A 器械:B", "duplicate_key"),
    ],
)
def test_problems_are_reported(text: str, code: str) -> None:
    _, issues = parse("surgery_support", text)
    assert code in issues


def test_a_past_date_is_not_taken_for_another_field() -> None:
    values, issues = parse("surgery_support", "浙一 骨科 2026-11-30 脊柱A包")
    assert "surgery_date" not in values and values["kit"] == "脊柱A包"
    assert issues == ["past_date"]


def test_optional_fields_need_their_key() -> None:
    # 资料: ward is optional, so a second token is the content, never the ward unless it looks like one.
    values, _ = parse("material", "浙二 新品彩页")
    assert values == {"customer": "浙二", "topic": "新品彩页"}
    values, _ = parse("material", "浙二 脊柱外科 新品彩页", wards=["脊柱外科"])
    assert values == {"customer": "浙二", "ward": "脊柱外科", "topic": "新品彩页"}


def test_stock_reservation_fills_required_text_fields_in_order() -> None:
    values, issues = parse("stock_reservation", "省人民 骨钉 20 下周一")
    assert values == {"customer": "省人民", "product": "骨钉", "quantity": "20", "needed_by": "2026-12-07"}
    assert issues == []


def test_future_leaning_dates() -> None:
    assert parse_future_date("周二", TODAY) == date(2026, 12, 1)  # today counts
    assert parse_future_date("周一", TODAY) == date(2026, 12, 7)  # the coming Monday, not yesterday
    assert parse_future_date("11-30", TODAY) == date(2026, 11, 30)  # an explicit past date stays past
    assert parse_future_date("2027-01-05", TODAY) == date(2027, 1, 5)
    assert parse_future_date("1月5日", TODAY) == date(2027, 1, 5)
