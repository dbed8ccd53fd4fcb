"""The digest as rich text (bot/services/digest_render.py, cards/templates/digest.j2): first screen and detail,
every WeCom part within 2,048 bytes for a 60-rep team with long names, data never markup, English, and a template
overridden from ``[digest] templates_dir``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.config import Settings
from bot.services.digest_render import parse_rich, render_digest
from cards.rich import Span, to_html, to_plain, to_wecom_markdown
from cards.wecom import MARKDOWN_MAX_BYTES
from tests.conftest import make_settings
from tests.digest_data import long_name
from tests.digest_data import make_digest as digest


def settings(**sections: dict[str, Any]) -> Settings:
    return make_settings("sqlite+aiosqlite:///:memory:", **sections)


def test_the_first_screen_has_exceptions_and_totals_only() -> None:
    rich = render_digest(digest(), settings(), "zh-CN")
    text = to_plain(rich)
    assert rich.title == "日报 2026-12-01（周二） · 团队 3 人"
    assert [s.title for s in rich.sections] == [
        "计划完成（目标 92%）",
        "需要关注",
        "支持申请与任务",
        "客户异议 Top 3",
        "",
    ]
    assert "完成率 40%（3/15），计划客户到访率 50%" in text
    assert f"{long_name(1)} 20%（1/5）" in text
    assert "3 次拜访没有定位" in text and "超时 2 张，升级中 1 张" in text
    assert "物流 首次响应 中位 53 分钟，P90 2.5 小时，2 小时内 60%" in text
    assert "3 家 A 类客户超过 30 天未拜访：浙江省第00人民医院（集团）分院" in text
    assert "【每位代表】" not in text
    # The reps below the threshold and the late p90 are warnings; the completion is bold.
    spans = [s for sec in rich.sections for line in sec.lines for s in line.spans]
    assert Span(text="40%", bold=True) in spans
    assert Span(text="2.5 小时", tone="warn") in spans


def test_detail_adds_per_rep_and_per_department_tables() -> None:
    rich = render_digest(digest(), settings(), "zh-CN", detail=True)
    reps = next(s for s in rich.sections if s.title == "每位代表")
    assert reps.table is not None and reps.table.header == ("代表", "拜访", "计划完成", "完成率", "无定位")
    assert reps.table.rows[1] == (long_name(1), "3", "1/5", "20%", "1")
    depts = next(s for s in rich.sections if s.title == "每个部门")
    assert depts.table is not None and depts.table.rows[0] == ("物流", "5", "53 分钟", "2.5 小时", "60%", "1")
    gaps = next(s for s in rich.sections if s.title == "超过 30 天未拜访的 A 类客户")
    assert len(gaps.lines) == 3


def test_a_60_rep_team_with_long_names_stays_within_the_wecom_limit() -> None:
    for detail in (False, True):
        parts = to_wecom_markdown(render_digest(digest(60), settings(), "zh-CN", detail=detail))
        assert len(parts) > 1
        assert all(len(p.encode()) <= MARKDOWN_MAX_BYTES for p in parts)
        joined = "\n".join(parts)
        # Nothing lost in the split: every rep below the threshold is named (in detail, twice: list and table).
        for i in range(60):
            assert joined.count(long_name(i)) == (2 if detail else 1) + (i == 0), i


def test_data_never_becomes_markup() -> None:
    hostile = "*价格*</font>|⟦warn⟧x⟦/warn⟧\n## 标题"
    rich = render_digest(digest(objection=hostile), settings(), "zh-CN")
    [line] = [line for s in rich.sections if s.title == "客户异议 Top 3" for line in s.lines][:1]
    assert line.spans == (Span(text="*价格*</font>｜[warn]x[/warn] ## 标题 3 次"),)
    [part] = [p for p in to_wecom_markdown(rich) if "标题" in p]
    assert "<font" not in part.split("Top 3")[1].split("\n")[1]
    assert "&lt;/font&gt;" in to_html(rich)


def test_english() -> None:
    text = to_plain(render_digest(digest(), settings(), "en", detail=True))
    assert text.startswith("Daily digest 2026-12-01 (Tue) · team of 3")
    assert "Completion 40% (3/15), planned customers reached 50%" in text
    assert "Logistics first response: median 53 min, p90 2.5 h, within 2 h 60%" in text


def test_a_template_in_templates_dir_replaces_the_built_in_one(tmp_path: Path) -> None:
    (tmp_path / "digest.j2").write_text(
        '# {{ t("digest.title_team", period=period, n=d.scope.reps | length) }}\n'
        "## 自定义\n"
        "- {{ warn(d.reps[0].name) }} {{ pct(d.reps[0].plan_completion) }}\n"
    )
    rich = render_digest(digest(), settings(digest={"templates_dir": str(tmp_path)}), "zh-CN")
    assert [s.title for s in rich.sections] == ["自定义"]
    assert rich.sections[0].lines[0].spans == (Span(text=long_name(0), tone="warn"), Span(text=" 0%"))


def test_parse_rich_reads_every_marker() -> None:
    rich = parse_rich("# 标题\n## 甲\n> 一行\n- 要点\n|| 列1 | 列2\n| a | b\n---\n> 尾")
    assert rich.title == "标题"
    first, last = rich.sections
    assert first.title == "甲" and [line.bullet for line in first.lines] == [False, True]
    assert first.table is not None and first.table.rows == (("a", "b"),)
    assert last.title == "" and to_plain(rich).endswith("尾")


def test_a_reps_own_digest_has_no_team_hint() -> None:
    text = to_plain(render_digest(digest(1), settings(), "zh-CN"))
    assert text.startswith(f"日报 2026-12-01（周二） · {long_name(0)}")
    assert "日报 详情" not in text
