"""Rich text rendered per channel: WeCom markdown parts within 2,048 bytes split at section boundaries, data never
turned into markup, console HTML escaped, plain text for the rest."""

from __future__ import annotations

from cards.rich import Line, RichText, Section, Span, Table, to_html, to_plain, to_wecom_markdown

DIGEST = RichText(
    title="销售日报 12-02（华东一区）",
    sections=(
        Section(
            title="拜访",
            lines=(
                Line.of("计划 25 次，完成 ", Span(text="23", bold=True), " 次（92%）"),
                Line.of(Span(text="2 次拜访无定位", tone="warn"), bullet=True),
            ),
        ),
        Section(title="低于计划", table=Table(header=("代表", "完成率"), rows=(("王磊", "60%"), ("李娜", "75%")))),
    ),
)


def test_wecom_markdown_marks_bold_and_tones_and_flattens_tables() -> None:
    [part] = to_wecom_markdown(DIGEST)
    assert part.startswith("## 销售日报 12-02（华东一区）")
    assert "### 拜访" in part and "**23**" in part
    assert '· <font color="warning">2 次拜访无定位</font>' in part
    assert "> 代表：王磊，完成率：60%" in part


def test_data_never_becomes_wecom_markup() -> None:
    hostile = RichText(
        title="客户 *浙一*", sections=(Section(lines=(Line.of('<font color="info">[点我](http://x)</font>'),)),)
    )
    [part] = to_wecom_markdown(hostile)
    assert "＊浙一＊" in part and "<font" not in part and "](" not in part


def test_long_messages_split_at_section_boundaries_within_2048_bytes() -> None:
    sections = tuple(
        Section(
            title=f"代表 {i:02d}",
            lines=tuple(Line.of(f"浙江大学医学院附属第一医院 骨科 代表{i:02d}第{j}次拜访") for j in range(8)),
        )
        for i in range(20)
    )
    parts = to_wecom_markdown(RichText(title="周报", sections=sections))
    assert len(parts) > 1
    assert all(len(p.encode()) <= 2048 for p in parts)
    # Every section is whole in exactly one part: the cut falls between sections.
    for i in range(20):
        [holding] = [p for p in parts if f"### 代表 {i:02d}" in p]
        assert all(f"代表{i:02d}第{j}次拜访" in holding for j in range(8))


def test_a_section_longer_than_a_message_continues_under_its_title() -> None:
    big = Section(title="明细", lines=tuple(Line.of("行" * 100 + str(j)) for j in range(40)))
    parts = to_wecom_markdown(RichText(title="导出", sections=(big,)))
    assert len(parts) >= 4 and all(len(p.encode()) <= 2048 for p in parts)
    assert all(p.startswith("### 明细（续）") for p in parts[1:])
    assert sum(p.count("行" * 100) for p in parts) == 40  # nothing lost


def test_console_html_escapes_everything() -> None:
    hostile = RichText(
        title="<script>alert(1)</script>", sections=(Section(lines=(Line.of("<img src=x onerror=1>"),)),)
    )
    out = to_html(hostile)
    assert "<script>" not in out and "<img" not in out and "&lt;script&gt;" in out
    digest = to_html(DIGEST)
    assert "<strong>23</strong>" in digest and '<span class="tone-warn">' in digest
    assert "<ul><li>" in digest and "<td>王磊</td>" in digest


def test_plain_text_keeps_every_fact() -> None:
    text = to_plain(DIGEST)
    assert text.splitlines()[0] == "销售日报 12-02（华东一区）"
    assert "【拜访】" in text and "计划 25 次，完成 23 次（92%）" in text and "· 2 次拜访无定位" in text
    assert "代表：王磊，完成率：60%" in text


def test_wecom_markdown_keeps_the_space_between_spans() -> None:
    """ "完成率 " + bold "60%" read 完成率**60%** on WeCom: each span's edges were trimmed with its inner spaces."""
    rich = RichText(
        title="日报", sections=(Section(lines=(Line.of("完成率 ", Span(text="60%", bold=True), " 达标"),)),)
    )
    [part] = to_wecom_markdown(rich)
    assert "完成率 **60%** 达标" in part
