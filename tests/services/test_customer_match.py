"""Tests for bot.parsing.customer_match: resolving typed hospital names against the directory."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
from pypinyin import Style, lazy_pinyin

from bot.parsing.customer_match import (
    MAX_CHOICES,
    Candidate,
    CustomerEntry,
    CustomerMatcher,
    MatchResult,
    normalize,
)
from bot.parsing.customer_match import _pinyin_keys as pinyin_keys

DEMO_ROWS: list[tuple[int, str, str]] = [
    (1, "浙江大学医学院附属第一医院", "浙一;浙大一院;浙大一附院"),
    (2, "浙江大学医学院附属第二医院", "浙二;浙大二院"),
    (3, "浙江大学医学院附属邵逸夫医院", "邵逸夫;邵逸夫医院"),
    (4, "浙江省人民医院", "省人民;浙江省人民"),
    (5, "杭州市第一人民医院", "杭一;市一"),
    (6, "绍兴和平医院", "和平医院"),
    (7, "浙江医院", ""),
    (8, "杭州市第二人民医院", "杭二"),
]


def _entry(entry_id: int, name: str, aliases: str = "") -> CustomerEntry:
    return CustomerEntry(entry_id, name, tuple(alias for alias in aliases.split(";") if alias))


DEMO: list[CustomerEntry] = [_entry(*row) for row in DEMO_ROWS]


@pytest.fixture(scope="module")
def matcher() -> CustomerMatcher:
    return CustomerMatcher(DEMO)


def _ids(result: MatchResult) -> list[int]:
    return [candidate.entry.id for candidate in result.candidates]


# (query, expected status, expected ids)
#   exact/unique: the single resolved id; ambiguous: the candidate id set;
#   none: the leading suggestion ids (empty tuple = no suggestions at all).
CASES: list[tuple[str, str, tuple[int, ...]]] = [
    # exact names and aliases
    ("浙江大学医学院附属第一医院", "exact", (1,)),
    ("浙江省人民医院", "exact", (4,)),
    ("浙江医院", "exact", (7,)),
    ("浙一", "exact", (1,)),
    ("浙二", "exact", (2,)),
    ("浙大一院", "exact", (1,)),
    ("邵逸夫", "exact", (3,)),
    ("省人民", "exact", (4,)),
    ("市一", "exact", (5,)),
    ("杭二", "exact", (8,)),
    # pinyin initials and full pinyin
    ("zdyy", "exact", (1,)),
    ("ZDEY", "exact", (2,)),
    ("syf", "exact", (3,)),
    ("hzsdyrmyy", "exact", (5,)),
    ("shaoyifu", "exact", (3,)),
    ("shao yi fu", "exact", (3,)),
    ("zheyi", "exact", (1,)),
    ("zhejiangyiyuan", "exact", (7,)),
    # full-width input and punctuation
    ("ＺＤＹＹ", "exact", (1,)),
    ("（浙江医院）", "exact", (7,)),
    ("ｓｈａｏ ｙｉ ｆｕ", "exact", (3,)),
    # substrings (unique)
    ("和平", "unique", (6,)),
    ("邵逸夫医", "unique", (3,)),
    ("杭州市第一", "unique", (5,)),
    ("shaoyi", "unique", (3,)),
    ("shaoxing heping", "unique", (6,)),
    # abbreviation habits (character subsequence) and digits
    ("浙江大学附属第一医院", "unique", (1,)),
    ("浙一医院", "unique", (1,)),
    ("杭州第二医院", "unique", (8,)),
    ("浙大一附医院", "unique", (1,)),
    ("浙大1院", "unique", (1,)),
    ("杭州市第1人民医院", "unique", (5,)),
    # typos: Chinese, homophone (IME), pinyin
    ("浙江大学医学院附属第一医完", "unique", (1,)),
    ("浙江大学医学院附属第二医完", "unique", (2,)),
    ("浙江省人民医院门诊", "unique", (4,)),
    ("邵一夫", "unique", (3,)),
    ("shaoyfu", "unique", (3,)),
    ("hangzhoushidiyirenminyuan", "unique", (5,)),
    # English
    ("Zhejiang Provincial People's Hospital", "unique", (4,)),
    ("Zhejiang Hospital", "unique", (7,)),
    # ambiguous
    ("浙江大学医学院附属", "ambiguous", (1, 2, 3)),
    ("人民医院", "none", ()),  # only generic words: no hospital in particular (issue 11)
    ("第一医院", "none", ()),
    ("浙江大学医学院附属第三医院", "none", (3,)),  # no 第三医院: 浙一 and 浙二 name another numeral
    ("杭州", "ambiguous", (5, 8)),
    ("zhejiang", "ambiguous", (1, 2, 3, 4, 7)),
    # none, with or without suggestions
    ("协和医院", "none", ()),  # 绍兴和平医院 shares only 医院 and 和 (issue 11)
    ("北京协和", "none", ()),
    ("xyz", "none", ()),
    ("", "none", ()),
    ("   ", "none", ()),
    ("（）·-", "none", ()),
]


@pytest.mark.parametrize(("query", "status", "ids"), CASES, ids=[case[0] or "<empty>" for case in CASES])
def test_match_table(matcher: CustomerMatcher, query: str, status: str, ids: tuple[int, ...]) -> None:
    result = matcher.match(query)
    assert result.status == status, (query, result)
    got = _ids(result)
    if status in ("exact", "unique"):
        assert got == list(ids)
        assert result.best is not None
        assert result.best.id == ids[0]
    elif status == "ambiguous":
        assert set(got) == set(ids)
        assert result.best is None
    else:
        assert got[: len(ids)] == list(ids)
        assert len(got) <= 3
        assert result.best is None
        if not ids:
            assert all(candidate.score >= 45 for candidate in result.candidates)


def test_normalize_folds_width_case_spaces_and_punctuation() -> None:
    assert normalize("ＺＤＹＹ") == "zdyy"
    assert normalize("  浙江大学医学院附属第一医院（浙一）· ") == "浙江大学医学院附属第一医院浙一"
    assert normalize("Sir Run-Run Shaw (SRRSH)") == "sirrunrunshawsrrsh"
    assert normalize("\u3000\t\n") == ""


def test_exact_alias_keeps_zhe_yi_and_zhe_er_apart(matcher: CustomerMatcher) -> None:
    first, second = matcher.match("浙一"), matcher.match("浙二")
    assert (first.status, second.status) == ("exact", "exact")
    assert first.best == DEMO[0]
    assert second.best == DEMO[1]
    assert first.candidates == (Candidate(DEMO[0], 100.0, "浙一"),)


def test_abbreviation_found_without_matching_alias() -> None:
    entries = [dataclasses.replace(entry, aliases=entry.aliases[:1]) for entry in DEMO]  # only 浙一, 浙二...
    result = CustomerMatcher(entries).match("浙大一院")
    assert result.status == "unique"
    assert result.best is not None
    assert result.best.id == 1
    assert result.candidates[0].matched == "浙大第一医院"  # the name with its university shortened


def test_shared_alias_and_shared_initials_are_ambiguous() -> None:
    entries = [*DEMO, _entry(9, "镇江医院"), _entry(10, "宁波市第一医院", "市一")]
    matcher = CustomerMatcher(entries)
    shared_alias = matcher.match("市一")
    assert shared_alias.status == "ambiguous"
    assert set(_ids(shared_alias)) == {5, 10}
    assert all(candidate.score == 100.0 for candidate in shared_alias.candidates)
    shared_initials = matcher.match("zjyy")  # 浙江医院 and 镇江医院
    assert shared_initials.status == "ambiguous"
    assert set(_ids(shared_initials)) == {7, 9}
    assert matcher.match("zhenjiangyiyuan").best == entries[8]  # full pinyin still tells them apart


def test_english_aliases() -> None:
    entries = [
        dataclasses.replace(DEMO[2], aliases=(*DEMO[2].aliases, "SRRSH", "Sir Run Run Shaw Hospital")),
        *DEMO[3:],
    ]
    matcher = CustomerMatcher(entries)
    assert matcher.match("srrsh").status == "exact"
    for query in ("Sir Run Run Shaw", "sir run run shaw hospitl", "ＳＲＲＳＨ"):
        assert matcher.match(query).best == entries[0], query


def test_ambiguous_candidates_are_sorted_and_capped() -> None:
    extra = [_entry(20, "浙江省肿瘤医院"), _entry(21, "浙江省立同德医院"), _entry(22, "浙江省新华医院")]
    matcher = CustomerMatcher([*DEMO, *extra])
    result = matcher.match("浙江")  # 8 entries contain 浙江
    assert result.status == "ambiguous"
    assert len(result.candidates) == MAX_CHOICES == 6
    scores = [candidate.score for candidate in result.candidates]
    assert scores == sorted(scores, reverse=True)
    assert all(0 <= score <= 100 for score in scores)
    assert len(matcher.match("浙江", limit=3).candidates) == 3
    assert len(matcher.match("浙江", limit=1).candidates) == 2  # ambiguous always offers a choice
    suggested = matcher.match("浙江大学医学院附属第三医院")
    assert suggested.status == "none"
    assert len(suggested.candidates) >= 2
    assert len(matcher.match("浙江大学医学院附属第三医院", limit=1).candidates) == 1  # suggestions obey the limit


def test_invalid_limit_rejected(matcher: CustomerMatcher) -> None:
    with pytest.raises(ValueError):
        matcher.match("浙一", limit=0)


def test_result_types_are_frozen_and_best_is_none_unless_resolved(matcher: CustomerMatcher) -> None:
    result = matcher.match("浙一")
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.status = "none"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEMO[0].name = "x"  # type: ignore[misc]
    assert MatchResult("ambiguous", result.candidates * 2).best is None
    assert MatchResult("none", ()).best is None


def test_len_and_empty_directory(matcher: CustomerMatcher) -> None:
    assert len(matcher) == 8
    empty = CustomerMatcher([])
    assert len(empty) == 0
    assert empty.match("浙一") == MatchResult("none", ())
    assert empty.match("zdyy") == MatchResult("none", ())


def test_initials_equal_pypinyin_first_letter_style() -> None:
    for entry in DEMO:
        for text in (entry.name, *entry.aliases):
            full, initials, _tokens = pinyin_keys(text)
            assert initials == "".join(lazy_pinyin(text, style=Style.FIRST_LETTER))
            assert full == "".join(lazy_pinyin(text))
    assert pinyin_keys("解放军117医院")[:2] == ("jiefangjun117yiyuan", "jfj117yy")


CITIES = [
    *("宁波", "温州", "嘉兴", "湖州", "金华", "衢州", "舟山", "台州", "丽水", "南京"),
    *("苏州", "无锡", "常州", "上海", "北京", "天津", "重庆", "成都", "武汉", "长沙"),
    *("广州", "深圳", "厦门", "福州", "合肥", "南昌", "济南", "青岛", "郑州", "西安"),
    *("兰州", "昆明", "贵阳", "南宁", "海口", "太原", "石家庄", "沈阳", "长春", "哈尔滨"),
    *("呼和浩特", "乌鲁木齐", "拉萨", "银川", "西宁", "大连", "珠海", "佛山", "徐州", "扬州"),
]
ORDINALS = ("第一", "第二", "第三", "第四", "第五", "第六", "第七", "第八", "第九", "第十")
KINDS = (
    *("人民医院", "中医院", "妇幼保健院", "中心医院", "肿瘤医院"),
    *("儿童医院", "口腔医院", "骨科医院", "眼科医院", "康复医院"),
)


def _synthetic_directory() -> list[CustomerEntry]:
    entries = list(DEMO)
    combos = itertools.islice(itertools.product(CITIES, ORDINALS, KINDS), 5000 - len(DEMO))
    for offset, (city, ordinal, kind) in enumerate(combos):
        alias = f"{city}{ordinal[1]}{kind[0]}"  # e.g. 宁波一人
        entries.append(CustomerEntry(100 + offset, f"{city}市{ordinal}{kind}", (alias,)))
    return entries


def test_large_directory_still_resolves_correctly() -> None:
    """Sanity check on 5,000 customers (correctness only; no timing assertions)."""
    entries = _synthetic_directory()
    matcher = CustomerMatcher(entries)
    assert len(matcher) == 5000
    by_name = {entry.name: entry for entry in entries}
    for entry in entries[8::250]:
        exact = matcher.match(entry.name)
        assert (exact.status, exact.best) == ("exact", entry)
        via_alias = matcher.match(entry.aliases[0])
        assert (via_alias.status, via_alias.best) == ("exact", entry)
        assert matcher.match("".join(lazy_pinyin(entry.name))).best == entry
        # Last character mistyped: the right entry ranks first; 中医院 vs 中心医院 may stay ambiguous.
        typo = matcher.match(entry.name[:-1] + "完")
        assert typo.status in ("unique", "ambiguous"), (entry.name, typo)
        assert typo.candidates[0].entry == entry, (entry.name, typo)
    assert matcher.match("浙一").best == DEMO[0]
    assert matcher.match("邵一夫").best == DEMO[2]
    assert matcher.match("浙江大学医学院附属第一医完").best == DEMO[0]
    assert matcher.match("zdyy").best == DEMO[0]
    assert matcher.match("宁波市第一人民医完").best == by_name["宁波市第一人民医院"]
    assert matcher.match("宁波是第一人民医院").best == by_name["宁波市第一人民医院"]
    assert matcher.match("成都五眼科").best == by_name["成都市第五眼科医院"]
    wide = matcher.match("宁波")
    assert wide.status == "ambiguous"
    assert len(wide.candidates) == 6
    initials = matcher.match("nbsdyrmyy")  # 宁波市第一人民医院 — unique initials in this directory
    assert initials.best is not None
    assert initials.best.name == "宁波市第一人民医院"
    nowhere = matcher.match("协和医院")
    assert nowhere.status == "none"
    assert len(nowhere.candidates) <= 3
