"""cards/queue.py: a queue page is one compact card; on WeCom it keeps every line's card number (up to T9999, the
five characters a keyname shows; beyond, its 打开 button still names it) and every button, within the documented
template_card limits however many cards the queue holds and however long the names are."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from cards import wecom
from cards.payload import unpack
from cards.queue import PAGE_SIZE, DepartmentLoad, QueueEntry, QueueKind, QueueOpen, QueuePage, QueueView, queue_card
from tests.fakes.wecom import validate_send, validate_update

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
HOSPITAL = "首都医科大学附属北京安贞医院心血管内科（朝阳院区）冠心病介入治疗中心"
DEPARTMENTS = ("物流", "市场", "合规", "医学事务与学术推广部", "注册与质量合规部", "华东区域商务运营中心")


def make_entry(n: int, *, overdue: bool = False, long: bool = False) -> QueueEntry:
    return QueueEntry(
        card_id=1000 + n,
        card_no=f"T{1000 + n}",
        request_no=f"R{90_000 + n}",
        type_name="手术跟台支持（含器械准备与现场服务）" if long else "备货",
        customer=HOSPITAL if long else "浙一",
        rep="欧阳娜娜·阿不都热合曼" if long else "王磊",
        department_name=DEPARTMENTS[n % len(DEPARTMENTS)],
        state="claimed" if n % 2 else "open",
        holder="司马长风·慕容复" if n % 2 else "",
        due_at=NOW - timedelta(hours=n + 1) if overdue else NOW + timedelta(hours=n + 1),
        overdue=overdue,
        escalated=n % 3 == 0,
    )


def make_view(
    total: int, page: int = 0, *, kind: QueueKind = QueueKind.MINE, long: bool = False, scope: str | None = ""
) -> QueueView:
    pages = max(1, -(-total // PAGE_SIZE))
    first = page * PAGE_SIZE
    entries = [make_entry(n, overdue=n < 3, long=long) for n in range(first, min(total, first + PAGE_SIZE))]
    departments = [DepartmentLoad(d, 999, 99, 9) for d in DEPARTMENTS] if kind == QueueKind.ALL else []
    return QueueView(
        kind=kind,
        asked=kind,
        scope=scope,
        entries=entries,
        page=page,
        pages=pages,
        total=total,
        overdue=min(total, 3),
        unclaimed=total // 2,
        escalated=total // 3,
        departments=departments,
    )


def template(view: QueueView) -> dict[str, Any]:
    card = queue_card(view, "queue-0123456789abcdef", "zh-CN", SH, NOW)
    body = wecom.render_send_card(card, touser=["log01"], agent_id=1000002, duplicate_check_seconds=None)
    assert validate_send(body) == []
    update = wecom.render_update(card, userids=["log01"], agent_id=1000002, response_code="code")
    assert validate_update(update) == []
    tc: dict[str, Any] = body["template_card"]
    return tc


@pytest.mark.parametrize("kind", [QueueKind.MINE, QueueKind.DEPARTMENT, QueueKind.ALL])
@pytest.mark.parametrize("long", [False, True])
def test_a_middle_page_of_a_long_queue_keeps_every_line_and_button_within_wecom_limits(
    kind: QueueKind, long: bool
) -> None:
    scope = None if kind == QueueKind.ALL else ("" if kind == QueueKind.MINE else "物流")
    view = make_view(500, page=3, kind=kind, long=long, scope=scope)

    tc = template(view)

    assert [h["keyname"] for h in tc["horizontal_content_list"]] == [e.card_no for e in view.entries]
    assert len(tc["button_list"]) == wecom.MAX_BUTTONS  # four 打开, 上一页, 下一页: none dropped
    payloads = [unpack(b["key"]) for b in tc["button_list"]]
    assert payloads == [
        *(QueueOpen(e.card_id) for e in view.entries),
        QueuePage(kind, 2),
        QueuePage(kind, 4),
    ]
    assert [b["text"] for b in tc["button_list"]][-2:] == ["上一页", "下一页"]
    assert all(len(h["value"]) <= wecom.VALUE_MAX_CHARS for h in tc["horizontal_content_list"])
    assert len(tc.get("sub_title_text", "")) <= wecom.SUB_TITLE_MAX_CHARS
    assert "第 4/125 页" in tc["sub_title_text"]


def test_a_short_line_puts_the_deadline_the_state_and_the_holder_first() -> None:
    view = make_view(3)
    card = queue_card(view, "queue-1", "zh-CN", SH, NOW)
    assert card.title == "我的任务（3）"
    assert [f.value for f in card.fields] == [
        "超时1小时｜已升级｜待认领｜备货 浙一｜王磊｜R90000",
        "超时2小时｜处理中·司马长风·慕容复｜备货 浙一｜王磊｜R90001",
        "超时3小时｜待认领｜备货 浙一｜王磊｜R90002",
    ]
    tc = template(view)
    assert tc["horizontal_content_list"][0]["value"].startswith("超时1小时｜已升级｜待认领")


def test_a_director_card_names_each_line_department_and_counts_each_department() -> None:
    view = make_view(9, kind=QueueKind.ALL, scope=None)
    card = queue_card(view, "queue-1", "zh-CN", SH, NOW)
    assert card.title == "各部门待办（9）"
    assert card.description.splitlines()[1:3] == [
        "物流：未完成 999 · 待认领 99 · 超时 9",
        "市场：未完成 999 · 待认领 99 · 超时 9",
    ]
    assert card.fields[1].value.startswith("市场｜超时2小时")


def test_the_first_and_last_pages_offer_only_the_way_there_is() -> None:
    first, last = make_view(9, 0), make_view(9, 2)
    assert [b.text for b in queue_card(first, "q", "zh-CN", SH, NOW).buttons][-1] == "下一页"
    assert [b.text for b in queue_card(last, "q", "zh-CN", SH, NOW).buttons] == ["打开 T1008", "上一页"]
    assert [b.text for b in queue_card(make_view(2), "q", "zh-CN", SH, NOW).buttons] == ["打开 T1000", "打开 T1001"]


def test_a_card_number_too_long_for_a_wecom_keyname_is_still_named_by_its_button() -> None:
    entry = QueueEntry(**{**make_entry(0).__dict__, "card_id": 123_456, "card_no": "T123456"})
    view = QueueView(QueueKind.MINE, QueueKind.MINE, "", [entry], 0, 1, 1, 1, 1, 1)
    tc = template(view)
    assert tc["horizontal_content_list"][0]["keyname"] == "T123…"
    assert tc["button_list"][0]["text"] == "打开 T123456"


def test_an_empty_page_is_settled_and_says_so() -> None:
    card = queue_card(make_view(0), "queue-1", "zh-CN", SH, NOW)
    assert card.buttons == [] and card.status == "✅ 目前没有待处理的任务。"
    assert template(make_view(0))["replace_text"]


def test_english_lines_and_buttons() -> None:
    card = queue_card(make_view(5, 1), "queue-1", "en", SH, NOW)
    assert card.title == "My tasks (5)"
    assert [b.text for b in card.buttons] == ["Open T1004", "Previous"]
    assert card.fields[0].value.startswith("due 11-23 15:00")
