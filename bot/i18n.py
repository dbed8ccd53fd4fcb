"""User-facing text in Simplified Chinese (default) and English, looked up by key."""

from __future__ import annotations

from typing import Any

ZH = "zh-CN"
EN = "en"

# key → (zh-CN, en). Placeholders use str.format names.
CATALOG: dict[str, tuple[str, str]] = {
    # help & fallback
    "help.header": ("你好，{name}！你可以这样用我：", "Hi {name}! Here is what you can do:"),
    "help.visit": (
        "· 拜访 <医院> <科室> <联系人> 异议:价格 下一步:送样 — 一句话记录拜访；只发「拜访」则一步步引导",
        "· visit <hospital> <ward> <contact> objection:price next:samples — log a visit in one line; "
        "send just 'visit' for a guided dialog",
    ),
    "help.location": ("· 发送位置 — 作为拜访的定位凭证", "· share your location — evidence for a visit"),
    "help.my_visits": ("· 我的拜访 — 今天和本周的拜访", "· my visits — today's and this week's visits"),
    "help.correct": (
        "· 修改 <拜访编号> 字段:值 — 提交后 {hours} 小时内可更正，例如 修改 V12 下一步:送资料",
        "· edit <visit-no> field:value — correct a visit within {hours} h, e.g. edit V12 next:send brochure",
    ),
    "help.unlock": (
        "· 解锁 <拜访编号> — 管理员允许代表再次更正",
        "· unlock <visit-no> — admin: allow a rep to correct again",
    ),
    "help.cancel": ("· 取消 — 放弃当前对话", "· cancel — abandon the current dialog"),
    "help.member": (
        "· 部门任务卡片会推送给你，点按钮即可处理",
        "· department task cards are pushed to you; act on them with one tap",
    ),
    "help.manager": (
        "· 日报 — 团队拜访与任务摘要（即将上线）",
        "· digest — your team's daily summary (coming soon)",
    ),
    "fallback": (
        "没听懂「{text}」。发「帮助」查看我能做什么，例如：拜访 浙一 骨科 张主任 异议:价格",
        "I didn't understand \"{text}\". Send 'help' to see what I can do, "
        "e.g. visit ZJU1 ortho Dr.Zhang objection:price",
    ),
    "fallback.media": (
        "已收到文件，但当前没有需要附件的事项。",
        "File received, but nothing is waiting for an attachment.",
    ),
    "welcome": (
        "欢迎使用销售助手，发「帮助」查看功能。",
        "Welcome to salesbot. Send 'help' to see what it can do.",
    ),
    "cancelled": ("已取消。", "Cancelled."),
    "nothing_to_cancel": ("当前没有进行中的对话。", "There is no dialog in progress."),
    "expired": ("上一次的对话已超时，已重新开始。", "Your previous dialog timed out; starting over."),
    "stale_button": ("这个按钮已过期，请重新发起。", "That button has expired; please start again."),
    "not_registered": (
        "你还没有在销售助手中登记，请联系管理员导入你的账号。",
        "You are not registered with salesbot yet; please ask your admin to add you.",
    ),
    "internal_error": (
        "处理你的消息时出错了，已记录。请稍后重试。",
        "Something went wrong handling your message; it has been logged. Please try again shortly.",
    ),
    "no_permission": ("你没有权限执行此操作。", "You are not allowed to do that."),
    # visit fields
    "field.customer": ("医院", "Hospital"),
    "field.ward": ("科室", "Ward"),
    "field.contacts": ("联系人", "Contacts"),
    "field.topics": ("主题", "Topics"),
    "field.products": ("产品", "Products"),
    "field.objection": ("异议", "Objection"),
    "field.commitments": ("承诺", "Commitments"),
    "field.next_step": ("下一步", "Next step"),
    "field.attitude": ("客户态度", "Attitude"),
    "field.visited_at": ("拜访时间", "Visit time"),
    "field.location": ("定位", "Location"),
    # visit dialog
    "visit.ask.customer": (
        "拜访了哪家医院？（可用简称，如 浙一）",
        "Which hospital did you visit? (short names work)",
    ),
    "visit.ask.ward": ("哪个科室？", "Which ward?"),
    "visit.ask.contacts": (
        "见了谁？（如 张主任，多人用、分隔）",
        "Whom did you meet? (e.g. Dr.Zhang; separate several with ,)",
    ),
    "visit.ask.topics": ("沟通了什么主题？", "What did you talk about?"),
    "visit.ask.products": ("涉及哪些产品？", "Which products?"),
    "visit.ask.objection": ("客户有什么异议？", "What did the customer object to?"),
    "visit.ask.commitments": ("我们做了什么承诺？", "What did we commit to?"),
    "visit.ask.next_step": ("下一步计划？", "What is the next step?"),
    "visit.ask.attitude": ("客户态度如何？", "How was the customer's attitude?"),
    "visit.ask.visited_at": (
        "什么时候拜访的？（如 今天下午3点、昨天）",
        "When was the visit? (e.g. today 3pm, yesterday)",
    ),
    "visit.ask.hint": (
        "随时可发「字段:值」更正，或「取消」放弃。",
        "Send 'field:value' at any time to correct, or 'cancel' to abandon.",
    ),
    "visit.choose_customer": (
        "「{text}」可能是以下医院，请选择：",
        '"{text}" could be one of these hospitals:',
    ),
    "visit.unknown_customer": (
        "找不到医院「{text}」。{suggest}请重新输入医院名称或简称。",
        'No hospital matches "{text}". {suggest}Please type the hospital name again.',
    ),
    "visit.suggest": ("你是不是想找：{names}？", "Did you mean: {names}? "),
    "visit.unknown_ward": (
        "{customer} 没有科室「{ward}」。可选：{wards}",
        '{customer} has no ward "{ward}". Choose from: {wards}',
    ),
    "visit.bad_objection": (
        "异议「{value}」不在可选范围：{choices}",
        'Objection "{value}" is not one of: {choices}',
    ),
    "visit.bad_time": (
        "看不懂时间「{value}」，请写成 今天15:00、昨天下午3点 或 2026-11-20 15:00",
        'Cannot read the time "{value}"; write e.g. today 15:00, yesterday 3pm or 2026-11-20 15:00',
    ),
    "visit.future": ("拜访时间 {when} 在未来，请填写已发生的拜访。", "Visit time {when} is in the future."),
    "visit.too_old": (
        "拜访时间 {when} 超过 {days} 天的补录期限，请联系管理员补录。",
        "Visit time {when} is more than {days} days ago; ask an admin to record it.",
    ),
    "visit.unknown_key": (
        "不认识字段「{value}」。可用：医院 科室 联系人 主题 产品 异议 承诺 下一步 态度 时间",
        'Unknown field "{value}". Use: hospital ward contact topic product objection commitment next attitude time',
    ),
    "visit.empty_value": ("字段「{value}」没有填写内容。", 'Field "{value}" is empty.'),
    "visit.duplicate_key": (
        "字段「{value}」写了两次，已采用后一个。",
        'Field "{value}" was given twice; the last one counts.',
    ),
    "visit.confirm_title": ("请确认拜访记录", "Please confirm the visit"),
    "visit.confirm_desc": ("核对无误后点「提交」。", "Tap Submit if everything is right."),
    "visit.btn.submit": ("提交", "Submit"),
    "visit.btn.edit": ("修改", "Edit"),
    "visit.btn.cancel": ("取消", "Cancel"),
    "visit.edit_hint": (
        "请发送要修改的内容，格式「字段:值」，例如 异议:交付 或 科室:检验科。",
        "Send the change as 'field:value', e.g. objection:delivery or ward:lab.",
    ),
    "visit.location_none": ("未定位", "no location"),
    "visit.location_pending": (
        "提交后 {minutes} 分钟内发送位置即可关联",
        "share your location within {minutes} min",
    ),
    "visit.location_ok": ("已定位，距医院 {distance}", "located, {distance} from the hospital"),
    "visit.need_location": (
        "按公司规定，拜访需要定位凭证：请先发送你的位置，再点「提交」。",
        "Company policy requires location evidence: share your location, then tap Submit.",
    ),
    "visit.saved": (
        "✅ 拜访已记录：{no} {customer} {ward}。{location}",
        "✅ Visit logged: {no} {customer} {ward}. {location}",
    ),
    "visit.saved.no_location": (
        "未收到定位，已标记「无定位」；{minutes} 分钟内发送位置可补上。",
        "No location yet, marked 'no location'; share it within {minutes} min to attach it.",
    ),
    "visit.saved.location": (
        "定位已关联（距医院 {distance}）。",
        "Location attached ({distance} from the hospital).",
    ),
    "visit.submitted_status": ("已提交 {no}", "Submitted {no}"),
    "visit.cancelled_status": ("已取消", "Cancelled"),
    "visit.location_attached": (
        "📍 位置已关联到拜访 {no}（{customer}，距医院 {distance}）。",
        "📍 Location attached to visit {no} ({customer}, {distance} from the hospital).",
    ),
    "visit.location_kept": (
        "📍 已收到位置。{minutes} 分钟内提交的拜访会自动关联它。",
        "📍 Location received. A visit submitted within {minutes} min will use it.",
    ),
    "visit.location_far": (
        "⚠️ 该位置距 {customer} {distance}，请确认是否在医院。",
        "⚠️ That location is {distance} from {customer}; please check you were there.",
    ),
    "visit.not_found": (
        "找不到拜访 {no}。请用「我的拜访」查看编号。",
        "No visit {no}. Send 'my visits' to see the numbers.",
    ),
    "visit.not_yours": ("拜访 {no} 不是你的记录，不能修改。", "Visit {no} is not yours to edit."),
    "visit.locked": (
        "拜访 {no} 已锁定（超过 {hours} 小时更正期限）。如需修改请联系管理员解锁。",
        "Visit {no} is locked (the {hours} h correction window has passed). Ask an admin to unlock it.",
    ),
    "visit.correct_usage": (
        "格式：修改 <拜访编号> 字段:值，例如 修改 V12 下一步:送资料",
        "Usage: edit <visit-no> field:value, e.g. edit V12 next:send brochure",
    ),
    "visit.corrected": ("已更正拜访 {no}：{changes}", "Visit {no} corrected: {changes}"),
    "visit.no_change": ("拜访 {no} 没有变化。", "Visit {no} unchanged."),
    "visit.unlock_usage": ("格式：解锁 <拜访编号>", "Usage: unlock <visit-no>"),
    "visit.unlocked": (
        "已解锁拜访 {no}，代表在 {hours} 小时内可更正。",
        "Visit {no} unlocked; the rep may correct it within {hours} h.",
    ),
    "visit.unlocked_notice": (
        "管理员已解锁你的拜访 {no}，{hours} 小时内可发「修改 {no} 字段:值」更正。",
        "An admin unlocked your visit {no}; correct it within {hours} h with 'edit {no} field:value'.",
    ),
    "visit.list_empty": (
        "本周还没有拜访记录。发「拜访」开始记录。",
        "No visits this week yet. Send 'visit' to log one.",
    ),
    "visit.list_today": ("今天（{count}）", "Today ({count})"),
    "visit.list_week": ("本周（{count}）", "This week ({count})"),
    "visit.list_line": (
        "{no} {when} {customer} {ward} {contacts}{flag}",
        "{no} {when} {customer} {ward} {contacts}{flag}",
    ),
    "visit.flag_no_location": (" ⚠️无定位", " ⚠️no location"),
}


def normalize_locale(locale: str | None) -> str:
    """Map any user locale to one we have text for."""
    return EN if (locale or "").lower().startswith("en") else ZH


def t(locale: str | None, key: str, **params: Any) -> str:
    """The text for ``key`` in the user's locale, formatted with ``params``."""
    zh, en = CATALOG[key]
    text = en if normalize_locale(locale) == EN else zh
    return text.format(**params) if params else text


def fmt_distance(meters: float, locale: str | None) -> str:
    """Human distance: 320 米 / 1.2 公里."""
    en = normalize_locale(locale) == EN
    if meters < 1000:
        return f"{meters:.0f} m" if en else f"{meters:.0f} 米"
    return f"{meters / 1000:.1f} km" if en else f"{meters / 1000:.1f} 公里"
