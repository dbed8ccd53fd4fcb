"""The holiday arrangement parser: the State Council notices of 2025 and 2026 against chinese-calendar day by day,
the notice's variants (ASCII punctuation, 星期X, Chinese-numeral years, ranges across months and the year end),
TOML and CSV lists, and every validation error."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import chinese_calendar
import pytest

from bot.calendar.holiday_notice import (
    Arrangement,
    NoticeDay,
    describe_days,
    parse_csv,
    parse_file,
    parse_notice,
    parse_toml,
)

DATA = Path(__file__).resolve().parents[1] / "data"


def notice(year: int) -> Arrangement:
    path = DATA / f"holiday_notice_{year}.txt"
    return parse_file(path.name, path.read_bytes())


def closed(arr: Arrangement) -> list[date]:
    return [d.day for d in arr.days if d.kind == "closed"]


def opened(arr: Arrangement) -> list[date]:
    return [d.day for d in arr.days if d.kind == "open"]


def messages(arr: Arrangement) -> str:
    return "\n".join(str(p) for p in arr.errors)


# ---- the real notices agree with chinese-calendar -----------------------------------------------------------------


@pytest.mark.parametrize("year", [2025, 2026])
def test_the_notice_agrees_with_chinese_calendar_day_by_day(year: int) -> None:
    arr = notice(year)
    assert arr.ok, messages(arr)
    assert arr.warnings == []
    assert arr.year == year
    by_day = {d.day: d for d in arr.days}
    day = date(year, 1, 1)
    while day.year == year:
        on_holiday, holiday = chinese_calendar.get_holiday_detail(day)
        ours = by_day.get(day)
        if holiday is None:  # an ordinary day: the notice says nothing about it
            assert ours is None, day
            assert chinese_calendar.is_workday(day) is (day.isoweekday() <= 5)
        else:
            assert ours is not None, day
            assert ours.kind == ("closed" if on_holiday else "open"), day
            assert chinese_calendar.is_holiday(day) is (ours.kind == "closed"), day
            assert chinese_calendar.is_workday(day) is (ours.kind == "open"), day
            # The package's names are short (清明, 中秋); the notice's line may name two holidays (国庆节、中秋节).
            assert chinese_calendar.Holiday(holiday).chinese in ours.name, (day, ours.name)
        day += timedelta(days=1)


def test_2025_details() -> None:
    arr = notice(2025)
    spring = [d for d in arr.days if d.name == "春节"]
    assert [d.day for d in spring if d.kind == "closed"] == [date(2025, 1, 28) + timedelta(n) for n in range(8)]
    assert [d.day for d in spring if d.kind == "open"] == [date(2025, 1, 26), date(2025, 2, 8)]
    assert {d.line for d in spring} == {11}
    assert [d.name for d in arr.days if d.day == date(2025, 10, 6)] == ["国庆节、中秋节"]
    assert len(closed(arr)) == 28 and len(opened(arr)) == 5


def test_2026_details() -> None:
    arr = notice(2026)
    assert closed(arr)[:3] == [date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 3)]
    assert opened(arr) == [
        date(2026, 1, 4),
        date(2026, 2, 14),
        date(2026, 2, 28),
        date(2026, 5, 9),
        date(2026, 9, 20),
        date(2026, 10, 10),
    ]
    assert len(closed(arr)) == 33


# ---- the notice's variants ----------------------------------------------------------------------------------------

ONE_LINE = (
    "国务院办公厅关于2021年部分节假日安排的通知 经国务院批准，现将2021年元旦、春节放假调休日期的具体安排通知如下。"
    "一、元旦：1月1日至3日放假，共3天。二、春节：2月11日至17日放假调休，共7天。2月7日（星期日）、2月20日（星期六）上班。"
)


def test_items_on_one_line_with_xingqi() -> None:
    arr = parse_notice(ONE_LINE)
    assert arr.ok, messages(arr)
    assert closed(arr) == [date(2021, 1, d) for d in (1, 2, 3)] + [date(2021, 2, d) for d in range(11, 18)]
    assert opened(arr) == [date(2021, 2, 7), date(2021, 2, 20)]
    assert {d.name for d in arr.days} == {"元旦", "春节"}


def test_ascii_punctuation_and_a_chinese_numeral_year() -> None:
    text = (
        "国务院办公厅关于二〇二五年部分节假日安排的通知\n"
        "1. 劳动节:5月1日(周四)至5日(周一)放假调休,共5天.4月27日(周日)上班.\n"
        "(二) 国庆节、中秋节: 10月1日(周三)至8日(周三)放假调休, 共8天; 9月28日(周日), 10月11日(周六)上班.\n"
    )
    arr = parse_notice(text)
    assert arr.ok, messages(arr)
    assert arr.year == 2025
    assert closed(arr) == [date(2025, 5, d) for d in range(1, 6)] + [date(2025, 10, d) for d in range(1, 9)]
    assert opened(arr) == [date(2025, 4, 27), date(2025, 9, 28), date(2025, 10, 11)]
    assert [d.line for d in arr.days if d.day == date(2025, 10, 11)] == [3]


def test_full_width_digits_and_zero_written_ling() -> None:
    arr = parse_notice("二零二六年部分节假日安排\n三、清明节：４月４日（周六）至６日（周一）放假，共３天。")
    assert arr.ok, messages(arr)
    assert closed(arr) == [date(2026, 4, 4), date(2026, 4, 5), date(2026, 4, 6)]


@pytest.mark.parametrize(
    ("line", "first", "last"),
    [
        ("劳动节：4月30日至5月4日放假调休，共5天。", date(2027, 4, 30), date(2027, 5, 4)),
        ("国庆节：9月29日至10月6日放假调休，共8天。", date(2027, 9, 29), date(2027, 10, 6)),
        ("春节：1月28日（农历除夕）至2月4日放假调休，共8天。", date(2027, 1, 28), date(2027, 2, 4)),
        ("春节：2月5日至11日放假调休，共7天。", date(2027, 2, 5), date(2027, 2, 11)),
    ],
)
def test_ranges_within_and_across_months(line: str, first: date, last: date) -> None:
    arr = parse_notice(line, year=2027)
    assert arr.ok, messages(arr)
    assert closed(arr) == [first + timedelta(n) for n in range((last - first).days + 1)]
    assert arr.warnings == []


def test_a_range_across_the_year_end_with_explicit_years() -> None:
    # The 2019 notice's first line, as published.
    text = (
        "国务院办公厅关于2019年部分节假日安排的通知\n"
        "一、元旦：2018年12月30日至2019年1月1日放假调休，共3天。2018年12月29日（星期六）上班。\n"
    )
    arr = parse_notice(text)
    assert arr.ok, messages(arr)
    assert closed(arr) == [date(2018, 12, 30), date(2018, 12, 31), date(2019, 1, 1)]
    assert opened(arr) == [date(2018, 12, 29)]
    assert arr.year == 2019


def test_a_range_across_the_year_end_without_years_starts_in_the_december_before() -> None:
    arr = parse_notice("元旦：12月30日至1月1日放假调休，共3天。", year=2019)
    assert arr.ok, messages(arr)
    assert closed(arr) == [date(2018, 12, 30), date(2018, 12, 31), date(2019, 1, 1)]


def test_single_day_without_make_up_and_prose_around() -> None:
    text = (
        "国务院办公厅关于2024年部分节假日安排的通知\n"
        "各省、自治区、直辖市人民政府，国务院各部委、各直属机构：\n"
        "一、元旦：1月1日放假，与周末连休。\n"
        "二、春节：2月10日至17日放假调休，共8天。2月4日（星期日）、2月18日（星期日）上班。"
        "鼓励各单位结合带薪年休假等制度落实，安排职工在除夕（2月9日）休息。\n"
        "节假日期间，各地区、各部门要妥善安排好值班和安全、保卫等工作。\n"
        "国务院办公厅\n2023年10月25日\n"
    )
    arr = parse_notice(text)
    assert arr.ok, messages(arr)
    assert closed(arr) == [date(2024, 1, 1)] + [date(2024, 2, d) for d in range(10, 18)]
    assert opened(arr) == [date(2024, 2, 4), date(2024, 2, 18)]  # 2月9日 (除夕, 休息) is prose, not a closed day


def test_the_year_comes_from_the_title_not_the_signature_date() -> None:
    assert notice(2025).year == 2025  # signed 2024年11月12日


def test_year_option_when_the_title_is_missing() -> None:
    assert parse_notice("端午节：6月19日至21日放假，共3天。", year=2026).ok
    arr = parse_notice("端午节：6月19日至21日放假，共3天。")
    assert not arr.ok and "--year" in messages(arr)


def test_a_day_count_that_does_not_match_is_a_warning() -> None:
    arr = parse_notice("二、春节：1月28日（农历除夕）至2月4日放假调休，共7天。", year=2025)
    assert arr.ok
    assert len(closed(arr)) == 8
    assert len(arr.warnings) == 1
    assert arr.warnings[0].line == 1 and "7" in str(arr.warnings[0]) and "8" in str(arr.warnings[0])


# ---- notice errors ------------------------------------------------------------------------------------------------


def test_a_date_that_does_not_exist() -> None:
    arr = parse_notice("x\n春节：2月28日至30日放假调休，共3天。", year=2027)
    assert not arr.ok and arr.days == []
    assert arr.errors[0].line == 2
    assert "2027-02-30" in messages(arr) and "日期不存在" in messages(arr)


def test_a_range_whose_end_is_before_its_start() -> None:
    arr = parse_notice("劳动节：5月5日至1日放假调休，共5天。", year=2027)
    assert not arr.ok
    assert "ends before it starts" in messages(arr) and "结束早于开始" in messages(arr)
    arr = parse_notice("国庆节：10月8日至9月30日放假调休。", year=2027)
    assert not arr.ok and "ends before it starts" in messages(arr)


def test_a_day_both_closed_and_open() -> None:
    arr = parse_notice(
        "一、元旦：1月1日至3日放假，共3天。\n二、春节：1月2日（周六）上班，2月11日至17日放假。", year=2021
    )
    assert not arr.ok
    assert "both closed and a working day" in messages(arr) and "既放假又上班" in messages(arr)
    assert arr.errors[0].line == 2 and "line 1" in messages(arr)


def test_a_make_up_day_on_a_weekday() -> None:
    arr = parse_notice("劳动节：5月1日至5日放假调休，共5天。4月28日上班。", year=2027)  # a Wednesday
    assert not arr.ok
    assert "Saturday or Sunday" in messages(arr) and "2027-04-28" in messages(arr)


def test_a_weekday_in_parentheses_that_does_not_match_the_year() -> None:
    path = DATA / "holiday_notice_2025.txt"
    text = path.read_text(encoding="utf-8").replace("2025年部分", "2027年部分")
    arr = parse_notice(text)
    assert not arr.ok
    assert "wrong year?" in messages(arr)


def test_a_year_option_that_contradicts_the_title() -> None:
    arr = parse_notice((DATA / "holiday_notice_2026.txt").read_text(encoding="utf-8"), year=2027)
    assert not arr.ok and "year mismatch" in messages(arr) and "2026" in messages(arr)


def test_a_notice_without_a_holiday_line() -> None:
    arr = parse_notice("国务院办公厅关于2027年部分节假日安排的通知\n各省、自治区、直辖市人民政府：\n通知如下。\n")
    assert not arr.ok and "no holiday line" in messages(arr) and "没有找到节假日安排行" in messages(arr)
    assert arr.errors[0].line == 0


def test_a_holiday_line_without_dates() -> None:
    arr = parse_notice("春节：另行通知放假安排。", year=2027)
    assert not arr.ok and "no date before 放假" in messages(arr)


def test_a_date_without_a_month() -> None:
    arr = parse_notice("春节：5日至11日放假。", year=2027)
    assert not arr.ok and "without a month" in messages(arr)


def test_a_closed_weekend_day_is_fine() -> None:
    arr = parse_notice("端午节：6月20日（周六）至22日（周一）放假，共3天。", year=2026)
    assert arr.ok, messages(arr)


# ---- TOML and CSV -------------------------------------------------------------------------------------------------

TOML_2027 = """\
year = 2027

[[days]]
date = 2027-02-08
kind = "closed"
name = "春节"

[[days]]
date = "2027-02-06"
kind = "open"
name = "春节"
"""


def test_toml() -> None:
    arr = parse_toml(TOML_2027)
    assert arr.ok, messages(arr)
    assert arr.year == 2027
    assert arr.days == [
        NoticeDay(date(2027, 2, 6), "open", "春节", 8),
        NoticeDay(date(2027, 2, 8), "closed", "春节", 3),
    ]
    assert parse_file("days.toml", TOML_2027.encode()).days == arr.days


def test_toml_errors_carry_the_line_of_their_table() -> None:
    text = TOML_2027.replace("2027-02-08", "2027-02-10").replace('"2027-02-06"', '"2027-02-30"')
    arr = parse_toml(text)
    assert not arr.ok and arr.errors[0].line == 8 and "no such date" in messages(arr)
    arr = parse_toml(TOML_2027.replace('kind = "open"', 'kind = "maybe"'))
    assert not arr.ok and "kind 'maybe'" in messages(arr)
    arr = parse_toml(TOML_2027, year=2028)
    assert not arr.ok and "year mismatch" in messages(arr)
    arr = parse_toml("[[days]\n")
    assert not arr.ok and "TOML" in messages(arr)
    arr = parse_toml('title = "x"\n')
    assert not arr.ok and "[[days]]" in messages(arr)


def test_toml_without_a_year_takes_it_from_the_dates() -> None:
    arr = parse_toml(TOML_2027.replace("year = 2027\n", ""))
    assert arr.ok and arr.year == 2027
    arr = parse_toml(TOML_2027.replace("2027-02-08", "2026-10-08").replace("year = 2027\n", ""), year=2027)
    assert not arr.ok and "2026-10-08 is not in 2027" in messages(arr)


CSV_2027 = "date,kind,name\n2027-02-06,open,春节\n2027-02-08,closed,春节\n2027-02-09,放假,春节\n"


def test_csv_with_english_or_chinese_headers_or_none() -> None:
    arr = parse_csv(CSV_2027)
    assert arr.ok, messages(arr)
    assert [(d.day.day, d.kind, d.line) for d in arr.days] == [(6, "open", 2), (8, "closed", 3), (9, "closed", 4)]
    zh = parse_file("x.csv", ("日期,类型,名称\n" + CSV_2027.split("\n", 1)[1]).encode("gb18030"))
    assert zh.ok and zh.days == arr.days
    bare = parse_csv(CSV_2027.split("\n", 1)[1])
    assert bare.ok and [d.day for d in bare.days] == [d.day for d in arr.days]


def test_csv_errors() -> None:
    arr = parse_csv(CSV_2027 + "2027-02-09,open,春节\n")
    assert not arr.ok and arr.errors[0].line == 5 and "Saturday or Sunday" in messages(arr)
    arr = parse_csv(CSV_2027 + "2027-02-06,closed,春节\n")
    assert not arr.ok and "both closed and a working day" in messages(arr) and "line 2" in messages(arr)
    arr = parse_csv(CSV_2027 + "next friday,closed,x\n")
    assert not arr.ok and "unreadable date" in messages(arr)
    arr = parse_csv("date,kind\n")
    assert not arr.ok and "no days" in messages(arr)


def test_the_same_day_twice_is_a_warning() -> None:
    arr = parse_csv(CSV_2027 + "2027-02-08,closed,春节\n")
    assert arr.ok and len(arr.days) == 3
    assert "listed twice" in str(arr.warnings[0])


def test_describe_days_writes_runs_as_ranges() -> None:
    days = [date(2027, 2, 6), date(2027, 2, 7), date(2027, 2, 8), date(2027, 2, 20)]
    assert describe_days(days) == "2月6日（周六）至2月8日（周一）、2月20日（周六）"
