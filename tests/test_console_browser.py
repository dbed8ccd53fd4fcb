"""The web console in a real browser: `salesbot demo` in a subprocess, Debian's chromium driven by Playwright.

Skipped when /usr/bin/chromium or the playwright package is missing.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow
CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright python package not installed")
expect = sync_api.expect

ROOT = Path(__file__).resolve().parents[1]
STARTUP_SECONDS = 90
STEP_MS = 15_000  # how long to wait for the bot to answer one step

ONE_LINE_VISIT = "拜访 浙一 骨科 张主任 异议:价格 下一步:送样"

# What the bot says (bot/infra/i18n.py, zh-CN), as patterns a new bot message is matched against.
PROMPTS = {
    "customer": "拜访了哪家医院",
    "choose_customer": "可能是以下医院",
    "unknown_customer": "找不到医院",
    "ward": "哪个科室",
    "unknown_ward": "没有科室「",
    "contacts": "见了谁",
    "objection": "客户有什么异议",
    "topics": "沟通了什么主题",
    "commitments": "我们做了什么承诺",
    "next_step": "下一步计划",
    "attitude": "客户态度如何",
    "visited_at": "什么时候拜访的",
    "confirm": "请确认拜访记录",
    "saved": "拜访已记录",
    "fallback": "没听懂",
    "error": "处理你的消息时出错了",
    "stale": "这个按钮已过期",
}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-chars:]
    except OSError:
        return "(no log)"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`salesbot demo` on a free port with a fresh SQLite DB (one per module); yields its base URL.

    Each test signs in as its own person, so the tests do not share a dialog.
    """
    tmp_path = tmp_path_factory.mktemp("console")
    config = tmp_path / "salesbot.toml"
    # A small daily upload quota, so the refusal can be seen on the page (test_upload_refusals_are_shown).
    config.write_text("[org]\ndemo = true\n\n[console]\nuploads_per_day = 2\n", encoding="utf-8")
    port = _free_port()
    log_path = tmp_path / "server.log"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    env.pop("SALESBOT_CONFIG", None)
    cmd = [
        sys.executable,
        "-m",
        "bot.cli",
        "demo",
        "--config",
        str(config),
        "--port",
        str(port),
        "--db",
        str(tmp_path / "demo.db"),
    ]
    base = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + STARTUP_SECONDS
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"server exited with {proc.returncode}:\n{_tail(log_path)}")
                try:
                    with urllib.request.urlopen(f"{base}/healthz", timeout=2) as resp:
                        if resp.status == 200:
                            break
                except (urllib.error.URLError, OSError):
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"server not healthy after {STARTUP_SECONDS}s:\n{_tail(log_path)}")
                with contextlib.suppress(subprocess.TimeoutExpired):  # the poll interval; sees an early exit
                    proc.wait(timeout=0.2)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Any]:
    context = browser.new_context(
        base_url=server,
        viewport={"width": 390, "height": 844},
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
        has_touch=True,
    )
    context.set_default_timeout(STEP_MS)
    # Every Content-Security-Policy violation is recorded (an inline script, handler or style the policy blocks).
    context.add_init_script(_CSP_WATCH_JS)
    pg = context.new_page()
    errors: list[str] = []
    csp_reports: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on("console", lambda msg: csp_reports.append(msg.text) if "Content Security Policy" in msg.text else None)
    try:
        yield pg
        assert not errors, f"JavaScript errors on the page: {errors}"
        violations = pg.evaluate("() => window.__cspViolations || []")
        assert not violations and not csp_reports, f"CSP violations: {violations} {csp_reports}"
    finally:
        context.close()


_CSP_WATCH_JS = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


# ---- helpers -----------------------------------------------------------------------------------------------


def sign_in(page: Any, user_id: str = "rep01", name: str = "王磊") -> None:
    page.goto("/console")
    expect(page.get_by_text("演示模式")).to_be_visible()
    page.get_by_test_id(f"user-pick-{user_id}").click()
    expect(page.locator("#whoami")).to_contain_text(name)
    expect(page.locator("#composer-input")).to_be_focused()


def send(page: Any, text: str) -> None:
    box = page.locator("#composer-input")
    box.fill(text)
    box.press("Enter")
    expect(box).to_have_value("")
    expect(box).to_be_focused()
    expect(page.locator(".msg.user:not(.pending)").filter(has_text=text).last).to_be_visible()


def last_id(page: Any) -> int:
    """The newest feed item on screen (messages carry their feed id in data-id)."""
    return int(
        page.evaluate(
            "() => Math.max(0, ...[...document.querySelectorAll('#messages .msg[data-id]')]"
            ".map(e => Number(e.dataset.id)))"
        )
    )


_NEXT_BOT_JS = """
({after, patterns}) => {
  const msgs = [...document.querySelectorAll('#messages .msg.bot[data-id]')]
    .filter(e => Number(e.dataset.id) > after && !e.classList.contains('updated'))
    .sort((a, b) => Number(a.dataset.id) - Number(b.dataset.id));
  for (const e of msgs) {
    for (const [key, pat] of Object.entries(patterns)) {
      if (e.textContent.includes(pat)) return [Number(e.dataset.id), key];
    }
  }
  return null;
}
"""


def next_prompt(page: Any, after: int) -> tuple[int, str]:
    """The first new bot message (feed id > after, not an in-place update) matching a known prompt."""
    handle = page.wait_for_function(_NEXT_BOT_JS, arg={"after": after, "patterns": PROMPTS}, timeout=STEP_MS)
    msg_id, key = handle.json_value()
    return int(msg_id), str(key)


def choice(page: Any, msg_id: int, label: str | None = None) -> Any | None:
    """An enabled choice button on the card of message ``msg_id`` (``label`` exact, or the first one)."""
    buttons = page.locator(f'#messages .msg[data-id="{msg_id}"] .card button:not([disabled])')
    if label is not None:
        buttons = buttons.filter(has_text=re.compile(rf"^\s*{re.escape(label)}\s*$"))
    return buttons.first if buttons.count() else None


def tap(page: Any, button: Any) -> None:
    card = button.locator("xpath=ancestor::div[contains(concat(' ', @class, ' '), ' card ')][1]")
    ref = card.get_attribute("data-card-ref")
    button.click()
    # The tapped card turns into its answered form in place: same ref, no buttons left, shown once.
    settled = page.locator(f'.card[data-card-ref="{ref}"]')
    expect(settled).to_have_count(1)
    expect(settled.locator("button")).to_have_count(0)


def submit_and_check(page: Any, confirm_id: int) -> None:
    card = page.locator(f'#messages .msg[data-id="{confirm_id}"] .card')
    expect(card.get_by_role("button", name="提交", exact=True)).to_be_enabled()
    ref = card.get_attribute("data-card-ref")
    assert ref, "the confirmation card has no data-card-ref"
    card.get_by_role("button", name="提交", exact=True).click()
    expect(page.locator(".msg.bot").filter(has_text="拜访已记录").last).to_be_visible()
    same = page.locator(f'.card[data-card-ref="{ref}"]')
    expect(same).to_have_count(1)
    expect(same.locator("button")).to_have_count(0)
    expect(same).to_contain_text("已提交")


# ---- tests -------------------------------------------------------------------------------------------------


def test_one_line_visit_submitted_in_place(page: Any) -> None:
    sign_in(page)
    expect(page.locator("#whoami")).to_contain_text("代表")
    send(page, ONE_LINE_VISIT)

    card = page.locator(".card").filter(has=page.get_by_role("button", name="提交", exact=True)).last
    expect(card).to_be_visible()
    expect(card).to_contain_text("请确认拜访记录")
    expect(card).to_contain_text("浙江大学医学院附属第一医院")
    expect(card).to_contain_text("张主任")
    ref = card.get_attribute("data-card-ref")
    assert ref

    card.get_by_role("button", name="提交", exact=True).click()
    expect(page.locator(".msg.bot").filter(has_text="拜访已记录")).to_have_count(1)

    same = page.locator(f'.card[data-card-ref="{ref}"]')
    expect(same).to_have_count(1)
    expect(same.locator("button")).to_have_count(0)
    expect(same).to_contain_text("已提交")

    # History survives a reload (fetched from after=0), without duplicates.
    page.reload()
    expect(page.locator(".msg.bot").filter(has_text="拜访已记录")).to_have_count(1)
    expect(page.locator(f'.card[data-card-ref="{ref}"]')).to_have_count(1)
    expect(page.locator(f'.card[data-card-ref="{ref}"]')).to_contain_text("已提交")

    # 切换 goes back to the people list.
    page.locator("#logout").click()
    expect(page.get_by_test_id("user-pick-rep01")).to_be_visible()


def test_guided_visit_dialog(page: Any) -> None:
    sign_in(page, "rep02", "李娜")
    after = last_id(page)
    send(page, "拜访")
    answered: dict[str, int] = {}
    for _ in range(12):
        msg_id, key = next_prompt(page, after)
        after = msg_id
        answered[key] = answered.get(key, 0) + 1
        assert answered[key] <= 2, f"the bot keeps asking {key!r}"
        if key in ("unknown_customer", "fallback", "error", "stale"):
            text = page.locator(f'#messages .msg[data-id="{msg_id}"]').inner_text()
            pytest.fail(f"unexpected bot reply ({key}): {text}")
        elif key == "customer":
            send(page, "浙二")
        elif key == "choose_customer":
            button = choice(page, msg_id, "浙江大学医学院附属第二医院") or choice(page, msg_id)
            assert button is not None, "hospital choice card without buttons"
            tap(page, button)
        elif key == "ward":
            button = choice(page, msg_id)
            if button is not None:
                tap(page, button)
            else:
                send(page, "骨科")
        elif key == "unknown_ward":
            text = page.locator(f'#messages .msg[data-id="{msg_id}"]').inner_text()
            wards = re.split(r"[、，,\s]+", text.split("可选：", 1)[-1].strip())
            send(page, wards[0])
        elif key == "contacts":
            send(page, "李医生")
        elif key == "objection":
            button = choice(page, msg_id, "价格")
            assert button is not None, "the objection question offers no 价格 button"
            tap(page, button)
        elif key in ("topics", "commitments", "next_step", "attitude", "visited_at"):
            send(
                page,
                {"topics": "新品介绍", "commitments": "送样", "next_step": "送样", "attitude": "积极"}.get(key, "今天"),
            )
        elif key == "confirm":
            card = page.locator(f'#messages .msg[data-id="{msg_id}"] .card')
            expect(card).to_contain_text("浙江大学医学院附属第二医院")
            expect(card).to_contain_text("李医生")
            expect(card).to_contain_text("价格")
            submit_and_check(page, msg_id)
            break
    else:
        pytest.fail(f"the dialog did not reach the confirmation card; prompts seen: {answered}")
    assert {"customer", "ward", "contacts", "objection"} <= answered.keys()


def test_demo_location_panel(page: Any) -> None:
    sign_in(page, "mgr01", "陈静")
    page.locator("#location-open").click()
    expect(page.get_by_role("button", name="使用浏览器定位")).to_be_visible()
    expect(page.get_by_label("纬度")).to_be_visible()
    expect(page.get_by_label("经度")).to_be_visible()
    place = page.get_by_label("选择医院位置")
    expect(place.locator("option", has_text="浙江大学医学院附属第一医院")).to_have_count(1)
    place.select_option(label="浙江大学医学院附属第一医院")
    page.locator("#loc-place-send").click()
    expect(page.locator(".msg.user").filter(has_text="📍 浙江大学医学院附属第一医院")).to_be_visible()
    expect(page.locator(".msg.bot").filter(has_text="📍")).to_be_visible()
    expect(page.locator("#location-panel")).to_be_hidden()
    expect(page.locator("#composer-input")).to_be_focused()


# A 1x1 PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8cfc0f01f0005000201"
    "a5d1a2a70000000049454e44ae426082"
)


def test_console_page_csp_blocks_injected_inline_script(browser: Any, server: str) -> None:
    context = browser.new_context(base_url=server)
    context.add_init_script(_CSP_WATCH_JS)
    try:
        pg = context.new_page()
        response = pg.goto("/console")
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "default-src 'none'" in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        # The policy is enforced: a script injected into the page (as stored XSS would) does not run.
        pg.evaluate(
            "() => { const s = document.createElement('script'); s.textContent = 'window.__ran = true';"
            " document.body.appendChild(s); }"
        )
        pg.wait_for_function("() => window.__cspViolations.length > 0")
        assert pg.evaluate("() => window.__ran === undefined")
    finally:
        context.close()


def test_upload_refusals_are_shown(page: Any) -> None:
    sign_in(page, "log02", "郑浩")
    for n in (1, 2):
        page.set_input_files("#attach-input", files=[{"name": f"kit{n}.png", "mimeType": "image/png", "buffer": PNG}])
        expect(page.locator(".msg.user").filter(has_text=f"📎 kit{n}.png")).to_be_visible()
    page.set_input_files("#attach-input", files=[{"name": "kit3.png", "mimeType": "image/png", "buffer": PNG}])
    expect(page.locator("#toast")).to_contain_text("今天已上传 2 个文件")
    expect(page.locator(".msg.user").filter(has_text="📎 kit3.png")).to_have_count(0)


# ---- the console knows who you are (issue 11): chips per role, the phone layout, screenshots ----------------------

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
SCREENSHOTS = ROOT / "docs" / "screenshots"
REP_CHIPS = ["拜访", "跟台", "我的申请", "我的拜访", "帮助"]


def shot(page: Any, name: str) -> None:
    """A screenshot into docs/screenshots/, only when SALESBOT_UPDATE_SCREENSHOTS=1 (normal runs leave the tree
    clean)."""
    if os.environ.get("SALESBOT_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def chip_texts(page: Any) -> list[str]:
    return [t.strip() for t in page.locator("#chips .chip").all_inner_texts()]


_PLACEHOLDER_ROOM_JS = """
() => {
  const input = document.getElementById('composer-input');
  const cs = getComputedStyle(input);
  const ctx = document.createElement('canvas').getContext('2d');
  ctx.font = `${cs.fontStyle} ${cs.fontWeight} ${cs.fontSize} ${cs.fontFamily}`;
  const room = input.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
  return [ctx.measureText(input.placeholder).width, room];
}
"""


# Each message time: (shown, whether it is today in the browser's zone, font size in px).
_TIMES_JS = """
() => [...document.querySelectorAll('#messages .msg-time')].map(e => [
  e.textContent.trim(),
  new Date(e.getAttribute('datetime')).toDateString() === new Date().toDateString(),
  parseFloat(getComputedStyle(e).fontSize),
])
"""


def check_phone_layout(page: Any) -> None:
    """At 390×844: 帮助 is on screen whatever the role's chips, the input has room for its placeholder, and the
    message times are readable (12 px or more, HH:MM for today's)."""
    assert page.viewport_size == PHONE
    help_chip = page.locator("#chip-help")
    expect(help_chip).to_be_in_viewport(ratio=1)
    box = help_chip.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    text_width, room = page.evaluate(_PLACEHOLDER_ROOM_JS)
    assert room >= text_width, f"the input ({room:.0f} px) is narrower than its placeholder ({text_width:.0f} px)"
    times = page.evaluate(_TIMES_JS)
    assert times, "no message shows its time"
    for shown, today, size in times:
        assert re.fullmatch(r"\d{2}:\d{2}" if today else r"(\d{4}年)?\d{1,2}月\d{1,2}日 \d{2}:\d{2}", shown), shown
        assert size >= 12, f"message time at {size}px"


def next_bot_after(page: Any, after: int) -> None:
    page.wait_for_function(
        "(after) => [...document.querySelectorAll('#messages .msg.bot[data-id]')]"
        ".some(e => Number(e.dataset.id) > after)",
        arg=after,
        timeout=STEP_MS,
    )


def test_a_rep_sees_the_reps_chips_and_a_typo_gets_a_suggestion(page: Any) -> None:
    sign_in(page)
    expect(page.locator("#chips-roles .chip")).to_have_count(len(REP_CHIPS) - 1)
    assert chip_texts(page) == REP_CHIPS
    for chip in page.locator("#chips .chip").all():  # a rep's row fits a phone: nothing to scroll to
        expect(chip).to_be_in_viewport(ratio=1)
    send(page, "拜方 浙一 骨科")
    card = page.locator(".card").filter(has_text="你是想「拜访 浙一 骨科」吗？").last
    expect(card.get_by_role("button", name="发送", exact=True)).to_be_visible()
    check_phone_layout(page)
    shot(page, "rep-phone")
    after = last_id(page)
    card.get_by_role("button", name="发送", exact=True).click()
    settled = page.locator(".card").filter(has_text="你是想「拜访 浙一 骨科」吗？").last
    expect(settled).to_contain_text("已发送")
    expect(settled.locator("button")).to_have_count(0)
    # The visit dialog took the text the button sent (hospital and ward) and asks whom the rep met.
    next_bot_after(page, after)
    expect(page.locator(".msg.bot").filter(has_text=PROMPTS["contacts"]).last).to_be_visible()
    page.set_viewport_size(DESKTOP)
    shot(page, "rep-desktop")


def test_help_stays_on_screen_when_the_chips_overflow_a_phone(page: Any) -> None:
    sign_in(page, "dir01", "赵强")
    # Someone with many roles: more chips than a phone's width (added to the row the page renders them into).
    page.evaluate(
        "() => { const row = document.getElementById('chips-roles');"
        " for (const w of ['我的任务', '待认领', '部门待办', '超时', '升级策略', '管理帮助', '我的申请']) {"
        " const b = document.createElement('button'); b.className = 'chip'; b.textContent = w; row.appendChild(b); } }"
    )
    assert page.evaluate("() => document.getElementById('chips-roles').scrollWidth > window.innerWidth")
    page.locator("#chip-help").click()
    expect(page.locator(".msg.bot").filter(has_text="你可以这样用我")).to_be_visible()
    check_phone_layout(page)


@pytest.mark.parametrize(
    ("user_id", "name", "role", "chips"),
    [
        ("log01", "吴敏", "member", ["我的任务", "待认领", "帮助"]),
        ("log_head", "周涛", "head", ["部门待办", "超时", "帮助"]),
    ],
)
def test_logistics_people_see_their_queue_chips(
    page: Any, user_id: str, name: str, role: str, chips: list[str]
) -> None:
    sign_in(page, user_id, name)
    expect(page.locator("#chips .chip")).to_have_count(len(chips))
    assert chip_texts(page) == chips
    expect(page.locator("#empty-hint-rep")).to_have_attribute("hidden", "")  # no rep example for them
    # Tapping the first chip (a member's 我的任务) sends its word, and the bot answers it (the queue's content is
    # the queue feature's test).
    after = last_id(page)
    page.locator("#chips .chip").first.click()
    expect(page.locator(".msg.user:not(.pending)").filter(has_text=chips[0]).last).to_be_visible()
    next_bot_after(page, after)
    check_phone_layout(page)
    shot(page, f"{role}-phone")
    page.set_viewport_size(DESKTOP)
    shot(page, f"{role}-desktop")


def test_a_reps_request_reaches_the_members_queue_and_is_claimed_from_it(browser: Any, server: str, page: Any) -> None:
    # The rep submits a surgery-support request: logistics gets a task card.
    sign_in(page, "rep02", "李娜")
    send(page, "跟台 浙一 骨科 后天 器械:脊柱A包")
    confirm = page.locator(".card").filter(has=page.get_by_role("button", name="提交", exact=True)).last
    expect(confirm).to_contain_text("请确认手术跟台申请")
    confirm.get_by_role("button", name="提交", exact=True).click()
    submitted = page.locator(".msg.bot").filter(has_text="申请已提交").last
    expect(submitted).to_be_visible()
    request_no = re.search(r"申请已提交 (R\d+)", submitted.inner_text())
    assert request_no, submitted.inner_text()

    # A logistics member on a phone opens their queue from the chip: one compact list card, not a wall of cards.
    context = browser.new_context(
        base_url=server, viewport={"width": 390, "height": 844}, locale="zh-CN", timezone_id="Asia/Shanghai"
    )
    context.set_default_timeout(STEP_MS)
    member = context.new_page()
    try:
        sign_in(member, "log02", "郑浩")
        after = last_id(member)
        member.locator("#chips .chip").filter(has_text="我的任务").click()
        next_bot_after(member, after)
        queue = member.locator(".card").filter(has_text="我的任务（").last
        expect(queue).to_be_visible()
        expect(queue).to_contain_text(request_no.group(1))
        open_button = queue.get_by_role("button", name=re.compile(r"^\s*打开 T\d+\s*$")).first
        expect(open_button).to_be_in_viewport()
        card_no = open_button.inner_text().strip().removeprefix("打开 ")
        shot(member, "member-queue-phone")
        # 打开 shows the task card itself, with its live buttons; claiming from it works.
        open_button.click()
        task = member.locator(".card").filter(has=member.get_by_role("button", name="认领", exact=True)).last
        expect(task).to_contain_text(card_no)
        task.get_by_role("button", name="认领", exact=True).click()
        expect(member.locator(".card").filter(has_text=card_no).filter(has_text="郑浩").last).to_be_visible()
        # The queue now lists it as held by the member.
        after = last_id(member)
        member.locator("#chips .chip").filter(has_text="我的任务").click()
        next_bot_after(member, after)
        expect(member.locator(".card").filter(has_text="我的任务（").last).to_contain_text("郑浩")
    finally:
        context.close()
