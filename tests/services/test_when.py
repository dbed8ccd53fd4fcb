from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.parsing.when import parse_date, parse_when

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 22, 14, 30, tzinfo=TZ)  # Sunday
NEW_YEAR = datetime(2026, 1, 1, 9, 0, tzinfo=TZ)  # Thursday
MARCH = datetime(2026, 3, 2, 8, 0, tzinfo=TZ)  # Monday, right after a short February


def at(year: int, month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=TZ)


@pytest.mark.parametrize(
    ("text", "now", "expected"),
    [
        # relative days; a date alone is 10:00 unless it is today
        ("今天", NOW, NOW),
        ("今日", NOW, NOW),
        ("Today", NOW, NOW),
        ("昨天", NOW, at(2026, 11, 21)),
        ("昨日", NOW, at(2026, 11, 21)),
        ("yesterday", NOW, at(2026, 11, 21)),
        ("前天", NOW, at(2026, 11, 20)),
        ("大前天", NOW, at(2026, 11, 19)),
        # Chinese weekdays, weeks run Monday..Sunday and NOW is a Sunday
        ("上周三", NOW, at(2026, 11, 11)),
        ("本周三", NOW, at(2026, 11, 18)),
        ("这周三", NOW, at(2026, 11, 18)),
        ("周三", NOW, at(2026, 11, 18)),
        ("星期三", NOW, at(2026, 11, 18)),
        ("礼拜三", NOW, at(2026, 11, 18)),
        ("下周三", NOW, at(2026, 11, 25)),
        ("周日", NOW, NOW),
        ("星期天", NOW, NOW),
        ("上周日", NOW, at(2026, 11, 15)),
        ("本周一", NOW, at(2026, 11, 16)),
        ("周1", NOW, at(2026, 11, 16)),
        ("上个礼拜五", NOW, at(2026, 11, 13)),
        # English weekdays: bare = most recent not after today, last = strictly before today
        ("monday", NOW, at(2026, 11, 16)),
        ("last monday", NOW, at(2026, 11, 16)),
        ("last sunday", NOW, at(2026, 11, 15)),
        ("Next Monday", NOW, at(2026, 11, 23)),
        ("sun", NOW, NOW),
        # absolute dates
        ("2026-11-20", NOW, at(2026, 11, 20)),
        ("2026/11/20", NOW, at(2026, 11, 20)),
        ("2026年11月20日", NOW, at(2026, 11, 20)),
        ("11-20", NOW, at(2026, 11, 20)),
        ("11/20", NOW, at(2026, 11, 20)),
        ("11月20日", NOW, at(2026, 11, 20)),
        ("11月20号", NOW, at(2026, 11, 20)),
        ("十一月二十日", NOW, at(2026, 11, 20)),
        ("20号", NOW, at(2026, 11, 20)),
        ("25号", NOW, at(2026, 11, 25)),  # a few days ahead stays ahead; the caller rejects it
        ("30号", NOW, at(2026, 10, 30)),
        ("3月1日", NOW, at(2026, 3, 1)),
        # times alone are today
        ("15:00", NOW, at(2026, 11, 22, 15)),
        ("15：00", NOW, at(2026, 11, 22, 15)),
        ("3点", NOW, at(2026, 11, 22, 15)),
        ("３点", NOW, at(2026, 11, 22, 15)),
        ("8点", NOW, at(2026, 11, 22, 8)),
        ("下午3点", NOW, at(2026, 11, 22, 15)),
        ("下午3点半", NOW, at(2026, 11, 22, 15, 30)),
        ("下午三点一刻", NOW, at(2026, 11, 22, 15, 15)),
        ("上午10点15", NOW, at(2026, 11, 22, 10, 15)),
        ("上午10点15分", NOW, at(2026, 11, 22, 10, 15)),
        ("晚上8点", NOW, at(2026, 11, 22, 20)),
        ("中午1点", NOW, at(2026, 11, 22, 13)),
        ("3pm", NOW, at(2026, 11, 22, 15)),
        ("10:30am", NOW, at(2026, 11, 22, 10, 30)),
        ("12am", NOW, at(2026, 11, 22, 0)),
        ("上午", NOW, at(2026, 11, 22, 9)),
        ("下午", NOW, at(2026, 11, 22, 15)),
        ("中午", NOW, at(2026, 11, 22, 12)),
        ("晚上", NOW, at(2026, 11, 22, 19)),
        # combinations, with and without spaces
        ("昨天下午3点", NOW, at(2026, 11, 21, 15)),
        ("昨天 15:00", NOW, at(2026, 11, 21, 15)),
        ("昨天　１５：００", NOW, at(2026, 11, 21, 15)),
        ("2026-11-20 09:30", NOW, at(2026, 11, 20, 9, 30)),
        ("2026-11-20T09:30", NOW, at(2026, 11, 20, 9, 30)),
        ("周三上午", NOW, at(2026, 11, 18, 9)),
        ("上周五下午2点半", NOW, at(2026, 11, 13, 14, 30)),
        ("11月20号晚上7点", NOW, at(2026, 11, 20, 19)),
        ("昨晚", NOW, at(2026, 11, 21, 19)),
        ("yesterday at 3pm", NOW, at(2026, 11, 21, 15)),
        ("3pm yesterday", NOW, at(2026, 11, 21, 15)),
        ("下午3点左右", NOW, at(2026, 11, 22, 15)),
        # year boundary (NEW_YEAR is Thursday 2026-01-01)
        ("昨天", NEW_YEAR, at(2025, 12, 31)),
        ("前天下午", NEW_YEAR, at(2025, 12, 30, 15)),
        ("上周三", NEW_YEAR, at(2025, 12, 24)),
        ("本周一", NEW_YEAR, at(2025, 12, 29)),
        ("周五", NEW_YEAR, at(2025, 12, 26)),
        ("周四", NEW_YEAR, NEW_YEAR),
        ("下周一", NEW_YEAR, at(2026, 1, 5)),
        ("last friday", NEW_YEAR, at(2025, 12, 26)),
        ("12-30", NEW_YEAR, at(2025, 12, 30)),
        ("12月31日 16:00", NEW_YEAR, at(2025, 12, 31, 16)),
        ("31号", NEW_YEAR, at(2025, 12, 31)),
        ("1-2", NEW_YEAR, at(2026, 1, 2)),
        ("2月29日", NEW_YEAR, at(2024, 2, 29)),
        # month boundary (MARCH is Monday 2026-03-02)
        ("前天", MARCH, at(2026, 2, 28)),
        ("昨天", MARCH, at(2026, 3, 1)),
        ("上周六", MARCH, at(2026, 2, 28)),
        ("周日", MARCH, at(2026, 3, 1)),
        ("31号", MARCH, at(2026, 1, 31)),
    ],
)
def test_parse_when(text: str, now: datetime, expected: datetime) -> None:
    result = parse_when(text, now)
    assert result == expected
    assert result is not None
    assert result.tzinfo is now.tzinfo


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "abc",
        "浙一",
        "13月40日",
        "2月30日",
        "2026-13-01",
        "25:00",
        "10:61",
        "13pm",
        "上午15点",
        "晚上12点",
        "周八",
        "sunny",
        "todays",
        "昨天昨天",
        "下午晚上",
        "昨天 abc",
        "3",
        "301医院",
    ],
)
def test_parse_when_rejects(text: str) -> None:
    assert parse_when(text, NOW) is None


def test_parse_when_keeps_foreign_zone() -> None:
    new_york = datetime(2026, 11, 22, 9, 0, tzinfo=ZoneInfo("America/New_York"))
    assert parse_when("昨天下午3点", new_york) == datetime(2026, 11, 21, 15, 0, tzinfo=new_york.tzinfo)


@pytest.mark.parametrize(
    ("text", "today", "expected"),
    [
        ("昨天", date(2026, 11, 22), date(2026, 11, 21)),
        ("上周三", date(2026, 11, 22), date(2026, 11, 11)),
        ("下周三", date(2026, 11, 22), date(2026, 11, 25)),
        ("2026-11-20", date(2026, 11, 22), date(2026, 11, 20)),
        ("１１月２０日", date(2026, 11, 22), date(2026, 11, 20)),
        ("12-30", date(2026, 1, 1), date(2025, 12, 30)),
        ("昨天下午3点", date(2026, 11, 22), None),
        ("周三上午", date(2026, 11, 22), None),
        ("15:00", date(2026, 11, 22), None),
        ("昨晚", date(2026, 11, 22), None),
        ("abc", date(2026, 11, 22), None),
        ("13月40日", date(2026, 11, 22), None),
    ],
)
def test_parse_date(text: str, today: date, expected: date | None) -> None:
    assert parse_date(text, today) == expected
