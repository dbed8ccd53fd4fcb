"""Text that one backend stores and the other refuses: cleaned at the inbound boundary (every channel), checked
against column sizes on every path into a draft, and checked once more at flush on both backends.

Regression tests for issue 9 ("Data that one backend stores and the other refuses").
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from bot.core.events import CardAction, LocationShared, MediaMessage, TextMessage
from bot.infra.sanitize import clean_text
from bot.runtime import Runtime
from storage.limits import ValueDoesNotFit
from storage.models import Customer, InboundEvent, SupportRequest, Visit

LONG_WARD = "科" * 150


async def rows(rt: Runtime, model: Any) -> list[Any]:
    async with rt.db.read() as s:
        return list(await s.scalars(select(model).order_by(model.id)))


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("主题:a\x00b", "主题:ab"),
        ("line1\r\nline2\rline3", "line1\nline2\nline3"),
        ("tab\tstays", "tab\tstays"),
        ("bell\x07 esc\x1b[31m del\x7f c1\x85", "bell esc[31m del c1"),
        ("lone \ud800 surrogate \udfff", "lone  surrogate "),
        ("张主任\u202e反转", "张主任反转"),
        ("emoji 👍🏽 and 中文 stay", "emoji 👍🏽 and 中文 stay"),
    ],
)
def test_clean_text_removes_what_no_database_should_store(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean
    clean_text(raw).encode("utf-8")  # encodable: no lone surrogates left


def test_every_event_kind_is_cleaned_by_the_same_rule() -> None:
    common = {"channel": "wecom", "sender": "u\x00ser", "dedup_key": "k\x00"}
    assert TextMessage(**common, text="a\x00b").text == "ab"
    assert TextMessage(**common, text="x").sender == "user"
    assert LocationShared(**common, latitude=30, longitude=120, label="浙一\x00门口").label == "浙一门口"
    assert MediaMessage(**common, media_id="m\x00").media_id == "m"
    tap = CardAction(**common, payload="p\x00", selected={"k\x00": ["v\x00"]})
    assert (tap.payload, tap.selected) == ("p", {"k": ["v"]})


async def test_nul_in_a_visit_field_is_removed_and_the_visit_is_saved(console: Any, runtime: Runtime) -> None:
    rep = await console("rep01")
    await rep.send("拜访 浙一 骨科 张主任 主题:a\x00b 异议:价格")
    await rep.refresh()
    await rep.tap("提交")
    assert any(r.startswith("✅ 拜访已记录") for r in await rep.replies())
    [visit] = await rows(runtime, Visit)
    assert visit.topics == "ab"
    assert [e.status for e in await rows(runtime, InboundEvent)] == ["done", "done"]


async def test_control_characters_from_the_browser_are_removed_not_failed(console: Any, runtime: Runtime) -> None:
    rep = await console("rep01")
    await rep.send("帮助\x01\x00")
    assert any("拜访" in r for r in await rep.replies())
    assert {e.status for e in await rows(runtime, InboundEvent)} == {"done"}


async def test_a_lone_surrogate_from_the_browser_never_fails_an_event(console: Any, runtime: Runtime) -> None:
    rep = await console("rep01")
    # json.dumps writes a lone surrogate as the escape \ud800, which json.loads turns back into one.
    body = {"client_id": uuid.uuid4().hex, "text": "帮助\ud800"}
    async with rep.session.post(rep.server.make_url("/console/api/send"), json=body) as r:
        assert r.status < 500
    await runtime.settle()
    assert "failed" not in {e.status for e in await rows(runtime, InboundEvent)}


async def test_ward_typed_before_the_hospital_is_picked_by_button_is_validated(console: Any, runtime: Runtime) -> None:
    """跟台 科室:<150 chars> …, then 浙大, tap a candidate, 提交: stored a 150-character ward on SQLite and failed
    on PostgreSQL (varchar(100)). Now the ward is checked when the hospital is chosen, on every path."""
    rep = await console("rep01")
    await rep.send(f"跟台 科室:{LONG_WARD} 器械:X 日期:后天")
    replies = await rep.replies()
    assert any("科室太长了（最多 100 个字）" in r for r in replies), replies
    await rep.send("浙大")
    await rep.refresh()
    await rep.tap("浙江大学医学院附属第二医院")
    await rep.refresh()
    ward_card = rep.card_with("骨科")
    assert ward_card["title"].startswith("请选择科室")  # asked again, with the hospital's wards
    await rep.tap("骨科")
    await rep.refresh()
    await rep.tap("提交")
    [request] = await rows(runtime, SupportRequest)
    assert request.ward == "骨科"


async def test_ward_the_button_picked_hospital_does_not_have_is_refused(console: Any, runtime: Runtime) -> None:
    rep = await console("rep01")
    await rep.send("跟台 科室:眼科 器械:X 日期:后天")
    await rep.send("浙大")
    await rep.refresh()
    await rep.tap("浙江大学医学院附属第二医院")
    replies = await rep.replies()
    assert any("没有科室「眼科」" in r for r in replies), replies
    assert rep.card_with("脊柱外科")["title"].startswith("请选择科室")


async def test_overlong_ward_at_a_hospital_without_wards_is_refused_in_a_visit(console: Any, runtime: Runtime) -> None:
    now = datetime(2026, 11, 1, tzinfo=UTC)
    async with runtime.db.transaction() as s:
        s.add(Customer(name="无科室诊所", aliases=[], wards=[], contacts=[], created_at=now, updated_at=now))
    rep = await console("rep01")
    await rep.send(f"拜访 无科室诊所 科室:{LONG_WARD} 联系人:张三 异议:价格")
    replies = await rep.replies()
    assert any("科室太长了（最多 100 个字）" in r for r in replies), replies
    await rep.send("门诊部")
    await rep.send("无")  # no next step
    await rep.refresh()
    await rep.tap("提交")
    [visit] = await rows(runtime, Visit)
    assert visit.ward == "门诊部"


async def test_a_string_longer_than_its_column_fails_on_sqlite_as_on_postgresql(runtime: Runtime) -> None:
    now = datetime(2026, 11, 1, tzinfo=UTC)
    with pytest.raises(ValueDoesNotFit, match=r"customers\.name"):
        async with runtime.db.transaction() as s:
            s.add(Customer(name="院" * 201, aliases=[], wards=[], contacts=[], created_at=now, updated_at=now))
    with pytest.raises(ValueDoesNotFit, match="NUL"):
        async with runtime.db.transaction() as s:
            s.add(
                Customer(
                    name=f"a\x00{uuid.uuid4().hex}", aliases=[], wards=[], contacts=[], created_at=now, updated_at=now
                )
            )


async def test_an_imported_file_with_nul_and_control_characters_loads_on_both_backends(
    runtime: Runtime, tmp_path: Any
) -> None:
    from bot.imports.org import import_customers

    path = tmp_path / "customers.csv"
    path.write_bytes(
        "name,aliases,grade,address,latitude,longitude,wards,contacts\n"
        "新\x00医院,新院,B,杭州\x07市\x00滨江区,,,骨科\x1b;检验科,\n".encode()
    )
    report = await import_customers(runtime.db, path, now=datetime(2026, 11, 1, tzinfo=UTC))
    assert (report.created, report.errors) == (1, [])
    async with runtime.db.read() as s:
        customer = await s.scalar(select(Customer).where(Customer.name == "新医院"))
    assert customer is not None
    assert (customer.address, customer.wards) == ("杭州市滨江区", ["骨科", "检验科"])
