"""Visit rough edges (issue 11), each test named after what was wrong: the 其他 objection had no room for what it
was, the guided visit never asked for a next step, the card and the reply disagreed on the distance, 我的拜访 showed
a heading with nothing under it, a new hospital was taken with the old hospital's people, and a name with a space
in it became several contacts. Chat-level behaviour is in tests/scenarios/test_visits.py (every channel); here the
rules themselves, and what only the console shows (a location from another channel, the column limit)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from bot.infra.clock import FixedClock
from bot.infra.i18n import EN, ZH, fmt_distance
from bot.parsing.visit_parser import Objection, parse_field_value, parse_objection, parse_visit_line
from bot.runtime import Runtime
from bot.services import visits as svc
from storage.limits import ValueDoesNotFit, max_length
from storage.models import Customer, User, Visit

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=TZ)
OBJECTIONS = {
    "价格": ["price", "价钱", "费用", "贵"],
    "交付": ["delivery", "货期", "供货"],
    "资质": ["qualification", "证照", "授权"],
    "其他": ["other", "其它"],
}
ZJU1 = (30.2556, 120.1775)
# About 793 m north of 浙一, and 48 km north of it.
NEAR = (ZJU1[0] + 0.00713, ZJU1[1])
FAR = (ZJU1[0] + 0.4317, ZJU1[1])


async def visits(rt: Runtime) -> list[Visit]:
    async with rt.db.read() as s:
        return list(await s.scalars(select(Visit).order_by(Visit.id)))


def fields_of(card: dict[str, Any]) -> dict[str, str]:
    return {f["label"]: f["value"] for f in card["fields"]}


# ---- 1. the 其他 objection and what it was ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("价格", Objection("价格")),
        ("贵", Objection("价格")),
        ("其他", Objection("其他")),
        ("其他 医院在走招标流程", Objection("其他", "医院在走招标流程")),
        ("其他：医院在走招标流程", Objection("其他", "医院在走招标流程")),
        ("其他（医院在走招标流程）", Objection("其他", "医院在走招标流程")),  # as the card shows it
        ("其他医院在走招标流程", Objection("其他", "医院在走招标流程")),
        ("other tender running", Objection("其他", "tender running")),
        ("医院在走招标流程", Objection("其他", "医院在走招标流程")),  # not in the list: 其他, nothing lost
        ("价格 比竞品贵两成", Objection("价格", "比竞品贵两成")),
        ("价格太高", Objection("价格", "太高")),  # statistics count 价格, not 其他
        ("贵院在走招标流程", Objection("其他", "贵院在走招标流程")),  # a one-character alias is not run into text
        ("无", None),  # no objection at all: the rep picks one
    ],
)
def test_free_text_objection_is_stored_as_other_with_its_note(text: str, expected: Objection | None) -> None:
    assert parse_objection(text, OBJECTIONS) == expected


def test_free_text_objection_is_refused_when_no_other_objection_is_configured() -> None:
    strict = {k: v for k, v in OBJECTIONS.items() if k != "其他"}
    assert parse_objection("医院在走招标流程", strict) is None
    assert parse_field_value("objection", "医院在走招标流程", NOW, strict)[1] is not None


def test_objection_of_other_with_text_in_a_line_was_refused() -> None:
    """`异议:医院在走招标流程` was a bad_objection; `异议:其他:…` made 其他 an unknown field."""
    for line in (
        "拜访 浙一 骨科 张主任 异议:医院在走招标流程 下一步:送样",
        "拜访 浙一 骨科 张主任 异议:其他 医院在走招标流程 下一步:送样",
        "拜访 浙一 骨科 张主任 异议:其他:医院在走招标流程 下一步:送样",
    ):
        parsed = parse_visit_line(line, NOW, OBJECTIONS)
        assert parsed.issues == [], line
        assert (parsed.objection, parsed.objection_note, parsed.next_step) == ("其他", "医院在走招标流程", "送样")


async def test_an_objection_note_longer_than_its_column_is_dropped_and_said(console: Any, runtime: Runtime) -> None:
    limit = max_length(Visit, "objection_note")
    assert limit == 200
    rep = await console("rep01")
    await rep.send("拜访 浙一 骨科 张主任 异议:其他 " + "招" * (limit + 1))
    assert any("异议说明太长了（最多 200 个字）" in r for r in await rep.replies())
    assert fields_of(rep.last_card())["异议"] == "其他"
    await rep.tap("提交")
    [visit] = await visits(runtime)
    assert (visit.objection, visit.objection_note) == ("其他", None)


async def test_the_objection_note_column_refuses_an_overlong_value_on_every_backend(
    runtime: Runtime, clock: FixedClock
) -> None:
    now = clock.now()
    with pytest.raises(ValueDoesNotFit, match=r"visits\.objection_note"):
        async with runtime.db.transaction() as s:
            customer = await s.scalar(select(Customer).limit(1))
            assert customer is not None
            s.add(
                Visit(
                    rep_id="rep01",
                    customer_id=customer.id,
                    objection="其他",
                    objection_note="招" * 201,
                    visited_at=now,
                    source_channel="console",
                    created_at=now,
                    updated_at=now,
                )
            )
            await s.flush()
    assert await visits(runtime) == []


async def test_english_users_see_other_with_its_note(console: Any, runtime: Runtime) -> None:
    user = await console("mkt02")
    await user.send("visit 浙一 骨科 张主任 objection:other tender running")
    await user.refresh()
    assert fields_of(user.last_card())["Objection"] == "other (tender running)"
    await user.tap("Submit")
    [visit] = await visits(runtime)
    assert (visit.objection, visit.objection_note) == ("其他", "tender running")


# ---- 3. one distance, one format --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("meters", "zh", "en"),
    [
        (0.4, "0 米", "0 m"),
        (792.8, "793 米", "793 m"),
        (999.4, "999 米", "999 m"),
        (999.6, "1.0 公里", "1.0 km"),  # was "1000 米"
        (12_845.0, "12.8 公里", "12.8 km"),
        (48_003.0, "48.0 公里", "48.0 km"),
    ],
)
def test_distance_reads_in_metres_under_a_kilometre_else_kilometres(meters: float, zh: str, en: str) -> None:
    assert (fmt_distance(meters, ZH), fmt_distance(meters, EN)) == (zh, en)


def test_the_stored_distance_is_the_shown_one() -> None:
    customer = Customer(name="浙一", latitude=ZJU1[0], longitude=ZJU1[1])
    distance = svc.distance_to(customer, *NEAR)
    assert distance is not None and distance == round(distance, 1) and fmt_distance(distance, ZH) == "793 米"
    assert svc.distance_to(Customer(name="无坐标"), *NEAR) is None


async def test_submitted_card_showed_another_distance_than_the_reply_and_the_database(
    console: Any, runtime: Runtime, clock: FixedClock
) -> None:
    """The card on screen said 48.0 公里 (the location it knew), while a location shared since on another channel
    was the one stored (793 m) and said in the reply: the submitted card now shows what was stored."""
    rep = await console("rep01")
    await rep.location(*FAR)
    await rep.send("拜访 浙一 骨科 张主任 异议:价格")
    await rep.refresh()
    card = rep.last_card()
    assert fields_of(card)["定位"] == "已定位，距医院 48.0 公里"
    clock.set(clock.now() + timedelta(minutes=5))
    async with runtime.db.transaction() as s:  # shared on WeCom: the console card is not refreshed
        rep_row = await s.get(User, "rep01")
        assert rep_row is not None
        await svc.record_location(s, rep_row, "wecom", *NEAR, "", clock.now())
    await rep.tap("提交")
    replies = await rep.replies()
    [visit] = await visits(runtime)
    assert visit.distance_m is not None and fmt_distance(visit.distance_m, ZH) == "793 米"
    assert any("定位已关联（距医院 793 米）" in r for r in replies), replies
    settled = rep.card(card["ref"])
    assert settled["status"] == f"已提交 V{visit.id}" and fields_of(settled)["定位"] == "已定位，距医院 793 米"


# ---- 5. a new hospital must fit the ward and the contacts -------------------------------------------------------


def test_new_hospital_with_the_old_hospitals_contact_is_refused() -> None:
    zju1 = Customer(
        id=1, name="浙江大学医学院附属第一医院", wards=["骨科", "检验科"], contacts=[{"name": "张主任", "ward": "骨科"}]
    )
    zju2 = Customer(
        id=2,
        name="浙江大学医学院附属第二医院",
        wards=["骨科", "脊柱外科"],
        contacts=[{"name": "刘主任", "ward": "脊柱外科"}],
    )
    visit = Visit(id=1, customer_id=1, ward="骨科", contacts=["张主任"])
    with pytest.raises(svc.VisitError) as refused:
        svc.check_new_hospital(visit, zju1, zju2, {"customer_id": 2}, "浙二")
    assert refused.value.key == "visit.hospital_contacts_not_at"
    assert (refused.value.params["contacts"], refused.value.params["example_contact"]) == ("张主任", "刘主任")
    # Given with the new hospital, the new contacts are taken (and the ward on file moves along).
    changes: dict[str, Any] = {"customer_id": 2, "contacts": ["刘主任"]}
    svc.check_new_hospital(visit, zju1, zju2, changes, "浙二")
    assert changes == {"customer_id": 2, "contacts": ["刘主任"], "ward": "骨科"}
    # A contact nobody has on file (typed freely) is not a reason to refuse.
    svc.check_new_hospital(Visit(id=2, customer_id=1, contacts=["赵老师"]), zju1, zju2, {"customer_id": 2}, "浙二")
    # Both the ward and the contacts wrong: one refusal naming both.
    visit = Visit(id=3, customer_id=1, ward="检验科", contacts=["张主任"])
    with pytest.raises(svc.VisitError) as refused:
        svc.check_new_hospital(visit, zju1, zju2, {"customer_id": 2}, "浙二")
    assert refused.value.key == "visit.hospital_ward_contacts_not_at"


# ---- 6. names with spaces are one contact ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "contacts"),
    [
        ("拜访 浙一 骨科 张 主任", ["张主任"]),
        ("拜访 浙一 骨科 Dr. Wang Li", ["Dr. Wang Li"]),
        ("拜访 浙一 骨科 欧阳 娜娜", ["欧阳娜娜"]),
        ("拜访 浙一 骨科 王 主任 李 医生", ["王主任", "李医生"]),
        ("拜访 浙一 骨科 张主任 李主任", ["张主任", "李主任"]),  # titled people side by side stay apart
        ("拜访 浙一 骨科 联系人:张 主任、Dr. Wang Li、欧阳 娜娜", ["张主任", "Dr. Wang Li", "欧阳娜娜"]),
        ("拜访 浙一 骨科 联系人:Dr. Wang Li", ["Dr. Wang Li"]),
        ("拜访 浙一 骨科 联系人:张主任，李医生；王老师", ["张主任", "李医生", "王老师"]),
        ("拜访 浙一 骨科 联系人:张三和李四", ["张三", "李四"]),
        ("拜访 浙一 骨科 联系人:张主任及李医生", ["张主任", "李医生"]),
        ("拜访 浙一 骨科 联系人:Dr. Wang and Dr. Li", ["Dr. Wang", "Dr. Li"]),
        ("拜访 浙一 骨科 联系人:张和平", ["张和平"]),  # 和 inside a name
        ("拜访 浙一 骨科 联系人:欧阳和平", ["欧阳和平"]),
    ],
)
def test_contact_name_with_spaces_was_split_into_several_contacts(line: str, contacts: list[str]) -> None:
    parsed = parse_visit_line(line, NOW, OBJECTIONS)
    assert (parsed.customer, parsed.ward, parsed.contacts, parsed.issues) == ("浙一", "骨科", contacts, [])


def test_a_guided_answer_with_a_space_is_one_contact() -> None:
    assert parse_field_value("contacts", "欧阳 娜娜", NOW, OBJECTIONS) == (["欧阳娜娜"], None)
    assert parse_field_value("contacts", "Dr. Wang Li", NOW, OBJECTIONS) == (["Dr. Wang Li"], None)


async def test_a_late_location_at_a_hospital_without_coordinates_claimed_0_m(console: Any, runtime: Runtime) -> None:
    async with runtime.db.transaction() as s:
        await s.execute(update(Customer).where(Customer.id == 1).values(latitude=None, longitude=None))
    rep = await console("rep01")
    await rep.send("拜访 浙一 骨科 张主任 异议:价格")
    await rep.refresh()
    await rep.tap("提交")
    await rep.replies()
    await rep.location(*NEAR)
    assert await rep.replies() == ["📍 位置已关联到拜访 V1（浙江大学医学院附属第一医院）。"]  # was "距医院 0 米"
    [visit] = await visits(runtime)
    assert (visit.location_status, visit.distance_m) == ("ok", None)
