"""A formatted message (SendRich) reaches WeCom as markdown: parts within 2,048 bytes cut between sections, each
accepted by the fake API (which checks WeCom's rules), each counted by the per-person throttle."""

from __future__ import annotations

from bot.core.intents import SendRich
from bot.outbox import enqueue
from bot.runtime import Runtime
from cards.rich import Line, RichText, Section, Span
from tests.fakes.wecom import FakeWeCom


def _digest(sections: int) -> RichText:
    return RichText(
        title="销售日报 12-02",
        sections=tuple(
            Section(
                title=f"代表 {i:02d}",
                lines=(
                    Line.of("计划 5 次，完成 ", Span(text="4", bold=True), " 次"),
                    *(Line.of(f"浙江大学医学院附属第一医院 骨科 第{j}次拜访 张主任 <b>*价格*</b>") for j in range(6)),
                ),
            )
            for i in range(sections)
        ),
    )


async def _send(rt: Runtime, rich: RichText) -> None:
    async with rt.db.transaction() as s:
        enqueue(s, [SendRich(channel="wecom", user_ids=("mgr01",), rich=rich)], rt.clock.now())
    await rt.settle()


async def test_a_digest_arrives_as_markdown_with_its_markup(bot: Runtime, fake: FakeWeCom) -> None:
    await _send(bot, _digest(2))
    [part] = fake.markdowns_to("mgr01")
    assert part.startswith("## 销售日报 12-02") and "### 代表 01" in part and "**4**" in part
    # What a rep typed never becomes markup.
    assert "<b>" not in part and "＜b＞＊价格＊＜/b＞" in part
    assert fake.violations == []


async def test_a_long_digest_is_split_between_sections_within_the_limit(bot: Runtime, fake: FakeWeCom) -> None:
    await _send(bot, _digest(30))
    parts = fake.markdowns_to("mgr01")
    assert len(parts) > 1 and all(len(p.encode()) <= 2048 for p in parts)
    for i in range(30):
        assert sum(f"### 代表 {i:02d}" in p for p in parts) == 1
    assert fake.violations == []
