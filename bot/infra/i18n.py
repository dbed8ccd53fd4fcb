"""User-facing text in Simplified Chinese (default) and English, looked up by key."""

from __future__ import annotations

from datetime import datetime, tzinfo
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
        "· 日报 / 周报 / 月报 — 团队的计划完成、拜访与任务摘要；日报 昨天、日报 2026-12-01、日报 王磊、日报 详情",
        "· digest / weekly / monthly — your team's plans, visits and tasks; digest yesterday, digest 2026-12-01, "
        "digest <name>, digest details",
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
    # dialog engine (bot/dialogs)
    "dialog.understood": ("✓ {label}：{value}", "✓ {label}: {value}"),
    "dialog.stale_state": (
        "系统刚更新过，上次没填完的内容没能保留，请重新发起。",
        "The bot was just updated and your unfinished entry could not be kept; please start again.",
    ),
    # What a settled card of a dialog says (on WeCom at most 10 characters: the greyed-out button).
    "dialog.settled.cancelled": ("已取消", "Cancelled"),
    "dialog.settled.expired": ("已超时，未提交", "Timed out"),
    "dialog.settled.replaced": ("未提交，已重新开始", "Not sent"),
    "dialog.settled.updated": ("已修改，见下方新卡", "Updated ↓"),
    "visit.contacts_not_at": (
        "{contacts} 不是 {customer} 的联系人，已清空，请重新填写联系人。",
        "{contacts} is not a contact at {customer}; cleared, please give the contacts again.",
    ),
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
    "field_too_long": (
        "{field}太长了（最多 {max} 个字），这一项没有记下，请改短后再发一次。",
        "The {field} is too long (at most {max} characters) and was not taken; please send a shorter one.",
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
    "visit.list_line": (
        "{no} {when} {customer} {ward} {contacts}{objection}{flag}",
        "{no} {when} {customer} {ward} {contacts}{objection}{flag}",
    ),
    "visit.flag_no_location": (" ⚠️无定位", " ⚠️no location"),
    # support requests (rep side)
    "help.request": (
        "· 跟台 <医院> <科室> <手术日期> 器械:脊柱A包 — 申请支持（{types}）；只发关键词则一步步引导",
        "· surgery <hospital> <ward> <date> kit:spine-A — request support ({types}); send just the keyword "
        "for a guided dialog",
    ),
    "help.my_requests": (
        "· 我的申请 — 申请和各部门进度；进度 <申请编号> — 详情；补充 <卡片编号> <内容> — 回答部门的问题",
        "· my requests — your requests and each department's progress; progress <no> — details; "
        "reply <card-no> <text> — answer a department's question",
    ),
    "help.task": (
        "· 任务卡片：认领 / 完成 / 驳回 / 需补充；处理中直接发图片即为附件（或「附件 <卡片编号>」）",
        "· task cards: claim / done / reject / need info; while holding a card, send a photo to attach it "
        "(or 'attach <card-no>')",
    ),
    "help.escalation": (
        "· 升级记录 <卡片编号> — 卡片的处理与升级记录；升级策略 [部门] [申请类型] — 当前升级规则；"
        "升级通知上可接手、转派或暂缓",
        "· escalations <card-no> — a card's history; policy [department] [type] — the escalation rules; "
        "escalation notices let you take over, reassign or snooze",
    ),
    "request.confirm_title": ("请确认{type_name}申请", "Confirm the {type_name} request"),
    "request.confirm_desc": (
        "核对无误后点「提交」，将同时通知相关部门；可直接发「字段:值」更正",
        "Tap Submit to notify the departments at once; send 'field:value' to correct",
    ),
    "request.ask": ("请输入{label}：", "{label}?"),
    "request.ask.choice": ("请选择{label}：", "Choose the {label}:"),
    "request.ask.date": ("请输入{label}（如 2026-12-03、明天、下周三）：", "{label}? (e.g. 2026-12-03, tomorrow)"),
    "request.ask.hint": (
        "（随时可发「字段:值」更正，发「取消」放弃）",
        "(send 'field:value' to correct at any time, 'cancel' to stop)",
    ),
    "request.unknown_key": (
        "不认识「{value}」这个字段，可用：{keys}",
        'Unknown field "{value}"; use one of: {keys}',
    ),
    "request.empty_value": ("「{field}」没有填写内容。", '"{field}" has no value.'),
    "request.bad_date": (
        "「{value}」不是有效日期，请写成 2026-12-03、12月3日、明天 或 下周三。",
        '"{value}" is not a date; write 2026-12-03, Dec 3, tomorrow or next Wednesday.',
    ),
    "request.past_date": (
        "{field}不能早于今天（{today}），你填的是 {value}。请填写今天或以后的日期。",
        "The {field} cannot be before today ({today}); you gave {value}. Give today or a later date.",
    ),
    "request.bad_choice": ("「{value}」不是可选项，可选：{choices}", '"{value}" is not a choice: {choices}'),
    "request.too_long": ("{field}太长了（最多 {value} 字）。", "The {field} is too long (at most {value})."),
    "request.duplicate_key": ("{field}写了两次，已用后一个。", "{field} given twice; the later one is used."),
    "request.extra_word": (
        "「{value}」不知道填到哪里，请用「字段:值」。",
        "Where does \"{value}\" go? Use 'field:value'.",
    ),
    "request.edit_hint": (
        "发「字段:值」更正，例如 器械:脊柱B包；或点「提交」/「取消」。",
        "Send 'field:value' to correct, e.g. kit:spine-B; or tap Submit / Cancel.",
    ),
    "request.submitted_status": ("已提交 {no}", "Submitted {no}"),
    "request.cancelled_status": ("已取消", "Cancelled"),
    "request.submitted": (
        "✅ 申请已提交 {no}：{type_name}，{customer}{needed}。已通知 {departments}。发「进度 {no}」查看进度。",
        "✅ Request {no} submitted: {type_name}, {customer}{needed}. Notified: {departments}. Send 'progress {no}' "
        "for its status.",
    ),
    "request.no_recipients": (
        "⚠️ {department} 没有成员，卡片无人接收，请联系管理员。",
        "⚠️ {department} has no members; nobody received its card. Tell your admin.",
    ),
    "request.offer_title": ("需要跟台或其他支持吗？", "Need surgery support or other help?"),
    "request.from_visit": ("已关联拜访 {no}。", "Linked to visit {no}."),
    "request.list_empty": (
        "你还没有申请。发「跟台 浙一 骨科 明天 器械:脊柱A包」试试。",
        "No requests yet. Try 'surgery ZJU1 ortho tomorrow kit:spine-A'.",
    ),
    "request.list_header": ("我的申请（最近 14 天及未完成）：", "My requests (last 14 days and open ones):"),
    "request.list_line": (
        "{no} {type_name} {customer} {when} — {status}",
        "{no} {type_name} {customer} {when} — {status}",
    ),
    "request.card_line": (
        "  · {department}：{state}{holder}（{since}）",
        "  · {department}: {state}{holder} ({since})",
    ),
    "request.progress_header": (
        "{no} {type_name}｜{customer} {ward}\n申请人 {requester}，{when}；状态：{status}",
        "{no} {type_name} | {customer} {ward}\nRequested by {requester}, {when}; status: {status}",
    ),
    "request.progress_usage": (
        "格式：进度 <申请编号>，例如 进度 R12",
        "Usage: progress <request-no>, e.g. progress R12",
    ),
    "request.not_found": ("找不到申请 {no}。发「我的申请」查看编号。", "No request {no}. Send 'my requests'."),
    "request.not_visible": ("你没有权限查看申请 {no}。", "You may not view request {no}."),
    "request.status.open": ("处理中", "in progress"),
    "request.status.done": ("已全部完成", "all done"),
    "request.status.rejected": ("已驳回", "rejected"),
    "request.all_done": (
        "🎉 申请 {no}（{type_name}）各部门均已完成。",
        "🎉 Request {no} ({type_name}): every department is done.",
    ),
    # task cards
    "task.desc": ("{type_name}任务", "{type_name} task"),
    "task.btn.claim": ("认领", "Claim"),
    "task.btn.done": ("完成", "Done"),
    "task.btn.reject": ("驳回", "Reject"),
    "task.btn.info": ("需补充", "Need info"),
    "task.f.requester": ("申请人", "From"),
    "task.f.state": ("状态", "State"),
    "task.f.due": ("截止", "Due"),
    "task.f.no": ("编号", "No."),
    "task.f.attachments": ("附件", "Files"),
    "task.f.question": ("问题", "Question"),
    "task.f.answer": ("回复", "Answer"),
    "task.f.reason": ("驳回原因", "Reason"),
    "task.state.open": ("待认领", "open"),
    "task.state.claimed": ("处理中", "claimed"),
    "task.state.need_info": ("待补充", "waiting for info"),
    "task.state.done": ("已完成", "done"),
    "task.state.rejected": ("已驳回", "rejected"),
    "task.status.done": ("✅ {holder} 已完成（{when}）", "✅ Done by {holder} ({when})"),
    "task.status.rejected": ("⛔ {holder} 已驳回（{when}）", "⛔ Rejected by {holder} ({when})"),
    "task.evidence.photo": ("完成前需上传照片：直接发图片给我", "A photo is needed before Done: send it to me"),
    "task.evidence.attachment": (
        "完成前需上传附件：直接发文件或图片给我",
        "A file is needed before Done: send it to me",
    ),
    "task.not_allowed": (
        "你不是该部门成员，不能处理卡片 {no}。",
        "You are not in this department; card {no} is not yours.",
    ),
    "task.closed": ("卡片 {no} 已关闭（{state}），无需再操作。", "Card {no} is closed ({state}); nothing to do."),
    "task.already_yours": ("卡片 {no} 已由你认领。", "You already hold card {no}."),
    "task.held_by": ("卡片 {no} 已由 {holder} 认领处理。", "Card {no} is held by {holder}."),
    "task.waiting_info": (
        "卡片 {no} 正在等待代表补充信息，收到回复后再继续。",
        "Card {no} is waiting for the rep's answer; continue once it arrives.",
    ),
    "task.claim_first": ("请先「认领」卡片 {no}，再点「完成」。", "Claim card {no} before marking it done."),
    "task.need_photo": (
        "卡片 {no} 完成前需要上传照片：直接把照片发给我，再点「完成」。",
        "Card {no} needs a photo before Done: send me the photo, then tap Done.",
    ),
    "task.need_attachment": (
        "卡片 {no} 完成前需要上传附件：直接把文件或照片发给我，再点「完成」。",
        "Card {no} needs an attachment before Done: send it to me, then tap Done.",
    ),
    "task.reason_needed": ("请写明驳回原因。", "Please give a reason for the rejection."),
    "task.question_needed": ("请写明需要代表补充什么。", "Please write what the rep should add."),
    "task.no_question": ("卡片 {no} 没有待回答的问题。", "Card {no} has no open question."),
    "task.answer_needed": ("请写下对卡片 {no} 的回复内容。", "Please write your answer for card {no}."),
    "task.ask_reason": (
        "请输入驳回卡片 {no} 的原因（发「取消」放弃）：",
        "Why are you rejecting card {no}? (send 'cancel' to stop)",
    ),
    "task.ask_question": (
        "请输入需要代表补充的内容（卡片 {no}，发「取消」放弃）：",
        "What should the rep add? (card {no}; send 'cancel' to stop)",
    ),
    "task.claimed_ok": ("你已认领卡片 {no}：{title}", "You hold card {no}: {title}"),
    "task.done_ok": ("卡片 {no} 已完成。", "Card {no} done."),
    "task.rejected_ok": ("卡片 {no} 已驳回，已通知代表。", "Card {no} rejected; the rep was told."),
    "task.asked_ok": ("问题已转给代表，收到回复后会通知你。", "Question sent to the rep; you will get the answer."),
    "task.attached_ok": ("📎 已附加到卡片 {no}（共 {count} 个附件）。", "📎 Attached to card {no} ({count} in all)."),
    "task.attach_which": (
        "你正在处理多张卡片（{cards}），请先发「附件 <卡片编号>」，再发文件。",
        "You hold several cards ({cards}); send 'attach <card-no>' first, then the file.",
    ),
    "task.attach_target": ("好的，请发送卡片 {no} 的照片或文件。", "OK, send the photo or file for card {no}."),
    "task.attach_usage": ("格式：附件 <卡片编号>，例如 附件 T12", "Usage: attach <card-no>, e.g. attach T12"),
    "task.not_found": ("找不到卡片 {no}。", "No card {no}."),
    "task.answer_usage": (
        "格式：补充 <卡片编号> <内容>，例如 补充 T12 王主任主刀，8点开台",
        "Usage: reply <card-no> <text>, e.g. reply T12 Dr Wang operates at 8",
    ),
    "task.answer_which": (
        "有多个部门在等你补充（{cards}），请发「补充 <卡片编号> <内容>」。",
        "Several departments are waiting for you ({cards}); send 'reply <card-no> <text>'.",
    ),
    "task.answer_relayed": ("已转给{department}：{answer}", "Sent to {department}: {answer}"),
    # escalation
    "esc.title": ("⚠️ 第{level}级升级·{department}", "⚠️ Level {level} · {department}"),
    "esc.title_repeat": ("⏰ 仍未处理·{department}", "⏰ Still open · {department}"),
    "esc.settled_title": ("升级通知", "Escalation notice"),
    "esc.desc": ("{type_name}任务 {no} 超时未处理，请跟进", "{type_name} task {no} is overdue; please follow up"),
    "esc.f.waited": ("已等待", "Waited"),
    "esc.f.holder": ("处理人", "Holder"),
    "esc.nobody": ("无人认领", "nobody"),
    "esc.btn.take": ("接手", "Take over"),
    "esc.btn.reassign": ("转派", "Reassign"),
    "esc.btn.snooze_1h": ("暂缓1小时", "Snooze 1 h"),
    "esc.btn.snooze_4h": ("暂缓4小时", "Snooze 4 h"),
    "esc.btn.snooze_tomorrow": ("明早9点", "Until 9:00"),
    "esc.remind_claim": (
        "⏰ 卡片 {card}「{title}」还没人认领，首次响应截止 {when}。",
        '⏰ Card {card} "{title}" is unclaimed; first response due {when}.',
    ),
    "esc.remind_done": (
        "⏰ 卡片 {card}「{title}」将于 {when} 到期，请尽快处理。",
        '⏰ Card {card} "{title}" is due {when}.',
    ),
    "esc.not_allowed": ("你不能处理卡片 {no} 的升级。", "You may not act on the escalation of card {no}."),
    "esc.took_over": ("你已接手卡片 {no}：{title}", "You took over card {no}: {title}"),
    "esc.choose_assignee": ("把卡片 {no} 转派给：", "Hand card {no} to:"),
    "esc.no_members": ("该部门没有可转派的成员。", "The department has no member to hand it to."),
    "esc.assigned": ("卡片 {no} 已转派给 {name}。", "Card {no} handed to {name}."),
    "esc.assigned_notice": (
        "📌 {actor} 把卡片 {no}「{title}」转派给你，请尽快处理。",
        '📌 {actor} handed card {no} "{title}" to you; please handle it.',
    ),
    "esc.ask_snooze_reason": (
        "请输入暂缓原因（卡片 {no}，暂缓到 {until}；发「取消」放弃）：",
        "Why snooze card {no} until {until}? (send 'cancel' to stop)",
    ),
    "esc.snoozed": (
        "卡片 {no} 的升级已暂缓到 {until}：{reason}",
        "Escalation of card {no} snoozed until {until}: {reason}",
    ),
    "esc.history_usage": (
        "格式：升级记录 <卡片编号>，例如 升级记录 T12",
        "Usage: escalations <card-no>, e.g. escalations T12",
    ),
    "esc.history_header": ("卡片 {no}「{title}」的记录：", 'History of card {no} "{title}":'),
    "esc.next": ("下一步：{when} {what}", "Next: {when} {what}"),
    "esc.none_next": ("没有待执行的升级。", "No escalation pending."),
    "notice.attachment": ("📎 {card} 的附件（{kind}）", "📎 Attachment of {card} ({kind})"),
    "media.image": ("照片", "photo"),
    "media.file": ("文件", "file"),
    "media.voice": ("语音", "voice"),
    "media.video": ("视频", "video"),
    # notices to the rep / the department
    "notice.claimed": (
        "{no} {department}：{holder} 已认领「{title}」。",
        '{no} {department}: {holder} took "{title}".',
    ),
    "notice.need_info": (
        "❓ {no} {department} 的 {holder} 需要你补充：{question}\n直接回复即可（或发「补充 {card} 内容」）。",
        "❓ {no} {department} ({holder}) asks: {question}\nJust reply (or send 'reply {card} <text>').",
    ),
    "notice.done": ("✅ {no} {department} 已完成「{title}」{files}", '✅ {no} {department} finished "{title}"{files}'),
    "notice.files": ("，附件 {count} 个：{names}", "; {count} file(s): {names}"),
    "upload.too_large": (
        "文件超过 {size}，请压缩后再发。",
        "The file is over {size}; please compress it and send it again.",
    ),
    "upload.empty": ("文件是空的，请重新选择。", "The file is empty."),
    "upload.quota_count": (
        "今天已上传 {n} 个文件，达到每日上限，请明天再发。",
        "You have sent {n} files today, the daily limit; try again tomorrow.",
    ),
    "upload.quota_bytes": (
        "今天上传的文件将超过每日 {size} 上限，请明天再发。",
        "Today's uploads would exceed {size}, the daily limit; try again tomorrow.",
    ),
    "notice.answered": ("💬 {card} 代表 {rep} 回复：{answer}", "💬 {card}: {rep} answered: {answer}"),
    # escalation in plain words (issue 11): 升级记录 sentences, the next step, 升级策略, the notice card, hand-overs
    "escw.system": ("系统", "The system"),
    "escw.create": ("{who} 提交申请", "{who} submitted the request"),
    "escw.create_resubmit": (
        "{who} 修改后重新提交（替代被驳回的 {old}）",
        "{who} resubmitted it (replacing rejected {old})",
    ),
    "escw.resubmitted": ("{who} 已重新提交为 {new}", "{who} resubmitted it as {new}"),
    "escw.claim": ("{who} 认领", "{who} claimed it"),
    "escw.done": ("{who} 完成", "{who} marked it done"),
    "escw.done_files": ("{who} 完成（附件 {count} 个）", "{who} marked it done ({count} file(s))"),
    "escw.reject": ("{who} 驳回：{reason}", "{who} rejected it: {reason}"),
    "escw.need_info": ("{who} 请代表补充：{question}", "{who} asked the rep: {question}"),
    "escw.answer": ("{who} 补充：{answer}", "{who} answered: {answer}"),
    "escw.attach": ("{who} 上传了{kind}", "{who} attached a {kind}"),
    "escw.denied": (
        "{who} 想处理这张卡片，但不是该部门成员，未获允许",
        "{who} tried to act on the card but is not in the department: refused",
    ),
    "escw.remind_not_claimed": (
        "系统提醒 {targets}：还没人认领，首次响应快到期了",
        "The system reminded {targets} to claim it",
    ),
    "escw.remind_not_done": ("系统提醒 {targets}：完成期限快到了", "The system reminded {targets}: due soon"),
    "escw.remind": ("系统提醒 {targets}", "The system reminded {targets}"),
    "escw.level_not_claimed": (
        "第{level}级升级：超时未认领，已通知 {targets}",
        "Level {level}: not claimed in time, {targets} told",
    ),
    "escw.level_not_done": (
        "第{level}级升级：超时未完成，已通知 {targets}",
        "Level {level}: not done in time, {targets} told",
    ),
    "escw.repeat_not_claimed": ("仍未认领，再次通知 {targets}", "Still not claimed: {targets} told again"),
    "escw.repeat_not_done": ("仍未完成，再次通知 {targets}", "Still not done: {targets} told again"),
    "escw.takeover": ("{who} 接手了任务", "{who} took the task over"),
    "escw.takeover_from": ("{who} 从 {previous} 手中接手了任务", "{who} took the task over from {previous}"),
    "escw.reassign": ("{who} 转派给 {holder}", "{who} handed it to {holder}"),
    "escw.snooze": ("{who} 把升级暂缓到 {until}：{reason}", "{who} snoozed the escalation until {until}: {reason}"),
    "escw.escalation_denied": (
        "{who} 想处理这张卡片的升级，但没有权限，未获允许",
        "{who} tried to act on the escalation without permission: refused",
    ),
    "escw.other": ("{who} 做了其他操作", "{who} made another change"),
    "escw.nobody": ("（无人）", "nobody"),
    "escw.person_role": ("{name}（{role}）", "{name} ({role})"),
    "escw.role.rep": ("代表", "rep"),
    "escw.role.manager": ("销售经理", "sales manager"),
    "escw.role.director": ("总监", "director"),
    "escw.role.member": ("部门成员", "department member"),
    "escw.role.head": ("部门负责人", "department head"),
    "escw.role.admin": ("管理员", "admin"),
    "escw.deadline.first_response": ("首次响应", "first response"),
    "escw.deadline.complete": ("完成期限", "completion"),
    "escw.cond.not_claimed": ("未认领", "unclaimed"),
    "escw.cond.not_done": ("未完成", "not done"),
    "escw.next_remind_holder": (
        "提醒处理人 {targets}（{deadline_name} {deadline} 到期）",
        "remind the holder {targets} ({deadline_name} due {deadline})",
    ),
    "escw.next_remind_department": (
        "提醒部门成员（{deadline_name} {deadline} 到期）",
        "remind the department ({deadline_name} due {deadline})",
    ),
    "escw.next_level": (
        "第{level}级升级：若仍{condition}，通知 {targets}",
        "level {level}: if still {condition}, tell {targets}",
    ),
    "escw.next_repeat": ("若仍{condition}，再次通知 {targets}", "if still {condition}, tell {targets} again"),
    "escw.next_snoozed": ("（暂缓到此时）", " (the snooze ends then)"),
    "escw.policy_title": (
        "{type}（{department}）：首次响应 {first}、完成 {complete}（{hours}）",
        "{type} ({department}): first response {first}, done {complete} ({hours})",
    ),
    "escw.policy_title_department": ("{department}：", "{department}:"),
    "escw.policy_title_default": ("默认升级策略：", "Default escalation policy:"),
    "escw.hours.working": ("工作时间", "working hours"),
    "escw.hours.calendar": ("日历时间，夜间和节假日也计时", "calendar hours: nights and holidays count"),
    "escw.policy_remind": (
        "· 时限过去 {percent}% 时提醒处理人（还没人认领时提醒部门成员）",
        "· at {percent}% of each deadline: remind the holder (the department while unclaimed)",
    ),
    "escw.policy_no_remind": ("· 不发到期提醒", "· no reminders"),
    "escw.policy_level": (
        "· 第{level}级：{when}仍{condition} → 通知 {targets}{repeat}",
        "· level {level}: still {condition} {when} → tell {targets}{repeat}",
    ),
    "escw.when.sla": ("{deadline}到期时", "at the {deadline} deadline"),
    "escw.when.sla_plus": ("{deadline}到期后 {hours}", "{hours} after the {deadline} deadline"),
    "escw.when.created": ("提交后 {hours}", "{hours} after submission"),
    "escw.when.total": ("（提交后 {hours}）", " ({hours} after submission)"),
    "escw.repeat_every": ("，之后每 {hours}再通知一次", ", again every {hours}"),
    "escw.policy_fallback": ("（暂无此人时改为通知 {targets}）", " (nobody there: {targets} instead)"),
    "escw.target.department": ("部门全体成员", "everyone in the department"),
    "escw.target.holder": ("处理人", "the holder"),
    "escw.target.requester": ("申请代表", "the rep who asked"),
    "escw.target.people": ("{label}（{names}）", "{label} ({names})"),
    "escw.none_yet": ("暂无", "nobody yet"),
    "escw.hours": ("{hours} 小时", "{hours} h"),
    "escw.minutes": ("{minutes} 分钟", "{minutes} min"),
    "esc.policy_unknown": (
        "不认识「{word}」。部门：{departments}；申请类型：{types}。例如：升级策略 物流 跟台",
        'Unknown name "{word}". Departments: {departments_en}; request types: {types_en}. '
        "E.g. policy logistics surgery",
    ),
    # WeCom shows at most 5 characters of a field's label: 响应截止 = 首次响应截止.
    "escw.f.due_first_response": ("响应截止", "Reply by"),
    "escw.f.due_complete": ("完成截止", "Due"),
    "escw.dur.under_minute": ("不到 1 分钟", "under a minute"),
    "escw.dur.minutes": ("{m} 分钟", "{m} min"),
    "escw.dur.hours": ("{h} 小时", "{h} h"),
    "escw.dur.hours_minutes": ("{h} 小时 {m} 分钟", "{h} h {m} min"),
    "escw.dur.days": ("{d} 天", "{d} d"),
    "escw.dur.days_hours": ("{d} 天 {h} 小时", "{d} d {h} h"),
    "notice.taken_over": (
        "{no} {department}：{actor} 接手了「{title}」。",
        '{no} {department}: {actor} took over "{title}".',
    ),
    "notice.reassigned": (
        "{no} {department}：{actor} 把「{title}」转派给了 {holder}。",
        '{no} {department}: {actor} handed "{title}" to {holder}.',
    ),
    "esc.handed_away_takeover": (
        "ℹ️ {actor} 接手了你处理的卡片 {no}「{title}」，你不用再跟进了。",
        'ℹ️ {actor} took over card {no} "{title}" from you; nothing more to do.',
    ),
    "esc.handed_away_reassign": (
        "ℹ️ {actor} 把你处理的卡片 {no}「{title}」转派给了 {holder}，你不用再跟进了。",
        'ℹ️ {actor} handed card {no} "{title}" to {holder}; nothing more to do for you.',
    ),
    # ---- department queues (issue 11): 我的任务 / 待认领 / 部门待办 / 超时 ----
    "queue.title.mine": ("我的任务（{total}）", "My tasks ({total})"),
    "queue.title.unclaimed": ("{scope}待认领（{total}）", "{scope}: unclaimed ({total})"),
    "queue.title.dept": ("{scope}待办（{total}）", "{scope}: open tasks ({total})"),
    "queue.title.overdue": ("{scope}超时任务（{total}）", "{scope}: overdue ({total})"),
    "queue.title.all": ("{scope}待办（{total}）", "{scope}: open tasks ({total})"),
    "queue.scope.mine": ("我的", "Mine"),
    "queue.scope.all": ("各部门", "All departments"),
    "queue.count.overdue": ("超时 {n}", "{n} overdue"),
    "queue.count.unclaimed": ("待认领 {n}", "{n} unclaimed"),
    "queue.count.escalated": ("已升级 {n}", "{n} escalated"),
    "queue.page": ("第 {page}/{pages} 页", "page {page}/{pages}"),
    "queue.department_line": (
        "{department}：未完成 {open} · 待认领 {unclaimed} · 超时 {overdue}",
        "{department}: {open} open · {unclaimed} unclaimed · {overdue} overdue",
    ),
    "queue.overdue_by": ("超时{by}", "{by} overdue"),
    "queue.due": ("截止{when}", "due {when}"),
    "queue.escalated": ("已升级", "escalated"),
    "queue.dur.minutes": ("{n}分钟", "{n} min"),
    "queue.dur.hours": ("{n}小时", "{n} h"),
    "queue.dur.days": ("{n}天", "{n} d"),
    "queue.btn.open": ("打开 {no}", "Open {no}"),
    "queue.btn.prev": ("上一页", "Previous"),
    "queue.btn.next": ("下一页", "Next"),
    "queue.empty": ("✅ 目前没有待处理的任务。", "✅ Nothing is waiting for you right now."),
    "queue.not_member": (
        "任务列表是给处理任务卡片的部门同事用的。你可以发「我的申请」查看你提交的申请和各部门的进度，"
        "或发「帮助」看看能做什么。",
        "The task list is for the department staff who handle task cards. Send 'my requests' to see your requests "
        "and each department's progress, or 'help' for what you can do.",
    ),
    "help.queue_member": (
        "· 我的任务（或「待办」）— 你手上的和本部门没人认领的任务，按截止时间排，点「打开」处理；"
        "待认领 — 只看没人认领的；超时 — 已过截止时间的",
        "· my tasks (or 'todo') — the cards you hold and your department's unclaimed ones, by deadline; tap Open "
        "to act; unclaimed — only those nobody took; overdue — those past their deadline",
    ),
    "help.queue_head": (
        "· 部门待办（或「我的任务」）— 本部门所有未完成的任务和处理人，超时和已升级的在前；待认领、超时 — 只看这些",
        "· department tasks (or 'my tasks') — every open card of your department and who holds it, overdue and "
        "escalated first; unclaimed, overdue — only those",
    ),
    "help.queue_director": (
        "· 部门待办 — 各部门未完成、待认领、超时的数量和最早的任务；待认领、超时 — 各部门的这些任务",
        "· department tasks — each department's open, unclaimed and overdue counts and the oldest cards; "
        "unclaimed, overdue — those cards in every department",
    ),
    # the console knows who you are: role chips, the role-aware fallback, the admin's guide (issue 11)
    "chip.visit": ("拜访", "Visit"),
    "chip.my_requests": ("我的申请", "My requests"),
    "chip.my_visits": ("我的拜访", "My visits"),
    "chip.my_tasks": ("我的任务", "My tasks"),
    "chip.unclaimed": ("待认领", "Unclaimed"),
    "chip.department_todo": ("部门待办", "Dept. to-do"),
    "chip.overdue": ("超时", "Overdue"),
    "chip.policy": ("升级策略", "Escalation rules"),
    "chip.admin_help": ("管理帮助", "Admin help"),
    "chip.help": ("帮助", "Help"),
    "fallback.suggest": ("你是想「{text}」吗？", 'Did you mean "{text}"?'),
    "fallback.suggest_send": ("发送", "Send"),
    "fallback.suggest_sent": ("✓ 已发送", "✓ Sent"),
    "fallback.hint": (
        "没听懂「{text}」。你可以发：{commands}；发「帮助」查看全部用法。",
        "I didn't understand \"{text}\". You can send: {commands}; send 'help' for everything.",
    ),
    "fallback.help_only": (
        "没听懂「{text}」。发「帮助」查看我能做什么。",
        "I didn't understand \"{text}\". Send 'help' to see what I can do.",
    ),
    "help.admin": (
        "· 管理帮助 — 导入人员和医院、检查配置的命令",
        "· admin help — the commands to import people and hospitals and to check the configuration",
    ),
    "help.admin_guide": (
        "管理员帮助（在服务器上运行，均可加 --config 配置文件）：\n"
        "· 导入人员：salesbot import org 人员.csv（CSV 或 XLSX；列 user_id, name, roles, department, manager, "
        "wecom_userid, dingtalk_staff_id, locale；再次导入按 user_id 更新，不会重复）\n"
        "· 导入医院：salesbot import customers 医院.csv（列 name, aliases, grade, address, latitude, longitude, "
        "wards, contacts；按 name 更新）\n"
        "· 导入会逐行报告错误（如「第 5 行 [roles]: …」），其余行照常写入；有错误时退出码为 2\n"
        "· 检查配置：salesbot config check 配置文件（每个错误带 TOML 路径）；"
        "让运行中的服务生效：salesbot config reload\n"
        "· 节假日与调休：salesbot calendar import 通知.txt，再用 salesbot calendar show 年份 核对\n"
        "· 控制台登录令牌：salesbot console token 用户ID；注销：salesbot console revoke 用户ID\n"
        "· 在这里：升级策略 [部门] [申请类型] — 查看升级规则；解锁 <拜访编号> — 允许代表再次更正",
        "Admin help (run on the server; each takes --config FILE):\n"
        "· people: salesbot import org people.csv (CSV or XLSX; columns user_id, name, roles, department, manager, "
        "wecom_userid, dingtalk_staff_id, locale; a re-import updates by user_id, never duplicates)\n"
        "· hospitals: salesbot import customers hospitals.csv (columns name, aliases, grade, address, latitude, "
        "longitude, wards, contacts; updates by name)\n"
        "· an import reports each bad row ('第 5 行 [roles]: …') and writes the others; exit code 2 when any failed\n"
        "· configuration: salesbot config check FILE (every error with its TOML path); salesbot config reload "
        "makes the running server use it\n"
        "· holidays: salesbot calendar import notice.txt, then salesbot calendar show YEAR to check\n"
        "· console sign-in: salesbot console token USER_ID; salesbot console revoke USER_ID ends it\n"
        "· here: policy [department] [type] — the escalation rules; unlock <visit-no> — let a rep correct again",
    ),
    # visit rough edges (issue 11): the 其他 objection's note, the skippable next step, 我的拜访, corrections
    "field.objection_note": ("异议说明", "Objection note"),
    "visit.objection_with_note": ("{objection}（{note}）", "{objection} ({note})"),
    "visit.ask.objection_note": (
        "「{objection}」具体是什么异议？一句话说明，如 医院在走招标流程。",
        'What was the "{objection}" objection? One line, e.g. the hospital is running a tender.',
    ),
    "dialog.skip": ("跳过", "Skip"),
    "dialog.skip_hint": ("没有的话点「跳过」或发「无」。", "Tap Skip or send 'none' if there is nothing."),
    "dialog.settled.skipped": ("已跳过", "Skipped"),
    "visit.list_earlier": ("本周早些时候（{count}）", "Earlier this week ({count})"),
    "visit.list_objection": (" 异议：{objection}", " objection: {objection}"),
    "visit.changed_to": ("{field} → {value}", "{field} → {value}"),
    "visit.example_name": ("姓名", "name"),
    "visit.location_attached_no_distance": (
        "📍 位置已关联到拜访 {no}（{customer}）。",
        "📍 Location attached to visit {no} ({customer}).",
    ),
    "visit.hospital_ward_not_at": (
        "医院没有改：{customer} 没有科室「{ward}」（可选：{wards}）。要换医院，请把科室一起改，"
        "例如「修改 {no} 医院:{hospital} 科室:{example_ward}」。",
        'Hospital not changed: {customer} has no ward "{ward}" (choose from: {wards}). To change the hospital, '
        "change the ward with it, e.g. 'edit {no} hospital:{hospital} ward:{example_ward}'.",
    ),
    "visit.hospital_contacts_not_at": (
        "医院没有改：{contacts} 是 {old} 的联系人，不在 {customer}。要换医院，请把联系人一起改，"
        "例如「修改 {no} 医院:{hospital} 联系人:{example_contact}」。",
        "Hospital not changed: {contacts} is a contact at {old}, not at {customer}. To change the hospital, "
        "change the contacts with it, e.g. 'edit {no} hospital:{hospital} contact:{example_contact}'.",
    ),
    "visit.hospital_ward_contacts_not_at": (
        "医院没有改：{customer} 没有科室「{ward}」（可选：{wards}），{contacts} 也不是它的联系人（是 {old} 的）。"
        "要换医院，请把科室和联系人一起改，"
        "例如「修改 {no} 医院:{hospital} 科室:{example_ward} 联系人:{example_contact}」。",
        'Hospital not changed: {customer} has no ward "{ward}" (choose from: {wards}), and {contacts} is a contact '
        "at {old}, not there. To change the hospital, change the ward and contacts with it, e.g. "
        "'edit {no} hospital:{hospital} ward:{example_ward} contact:{example_contact}'.",
    ),
    # support-request rules (issue 11): rejection and 重新提交, needed-by deadlines, the surgery's time of day
    "help.resubmit": (
        "· 重新提交 <申请编号> [字段:值] — 被驳回的部分按原因修改后重新提交，例如 重新提交 R1 器械:脊柱B包",
        "· resubmit <request-no> [field:value] — send a rejected part again, corrected, e.g. resubmit R1 kit:spine-B",
    ),
    "request.confirm_title_named": ("请确认{type_name}", "Confirm the {type_name}"),
    "request.time_without_date": (
        "「{value}」只有时间，请连同日期一起写，例如 12-05 8:00 或 后天 下午2点。",
        '"{value}" is only a time; give the date too, e.g. 12-05 8:00 or "the day after tomorrow 2 pm".',
    ),
    "request.needed_words": ("，{label} {value}", ", {label} {value}"),
    "request.status.part_rejected": (
        "已驳回（{departments}），其余处理中",
        "rejected by {departments}, rest in progress",
    ),
    "request.status.rejected_by": ("已驳回（{departments}）", "rejected by {departments}"),
    "request.resubmitted_as": ("（已重新提交为 {no}）", " (resubmitted as {no})"),
    "request.resubmit_usage": (
        "格式：重新提交 <申请编号> [字段:值]，例如 重新提交 R12 器械:脊柱B包",
        "Usage: resubmit <request-no> [field:value], e.g. resubmit R12 kit:spine-B",
    ),
    "request.resubmit_not_yours": (
        "只有申请人本人可以重新提交申请 {no}。",
        "Only the rep who raised request {no} may resubmit it.",
    ),
    "request.nothing_to_resubmit": (
        "申请 {no} 没有被驳回的部分，无需重新提交。发「进度 {no}」查看进度。",
        "Request {no} has no rejected part to resubmit. Send 'progress {no}' for its status.",
    ),
    "request.resubmit_unknown_type": (
        "申请 {no} 的类型已停用，无法重新提交，请重新发起申请。",
        "The type of request {no} is no longer offered; raise a new request.",
    ),
    "request.resubmit_fields": (
        "重新提交 {no} 时只能用「字段:值」更正（医院和科室不能改，请重新发起申请）。",
        "When resubmitting {no}, correct with 'field:value' only (not the hospital or ward: raise a new request).",
    ),
    "request.already_resubmitted": (
        "{card} 已重新提交为 {new}，无需再次提交。发「进度 {no}」查看进度。",
        "{card} was already resubmitted as {new}. Send 'progress {no}' for its status.",
    ),
    "request.resubmitted": (
        "🔁 已重新提交 {no} 的{department}部分{needed}：新卡片 {new}（原 {old} 已驳回）。已通知{department}。",
        "🔁 Resubmitted the {department} part of {no}{needed}: new card {new} ({old} stays rejected). "
        "{department} notified.",
    ),
    "request.resubmit_corrected": ("已更正：{changes}", "Corrected: {changes}"),
    "notice.rejected_title": ("⛔ {no} {department}驳回了申请", "⛔ {no}: {department} rejected it"),
    "notice.rejected_howto": (
        "请按驳回原因修改后点「重新提交」；需要更正时发「重新提交 {no} 字段:值」，例如 重新提交 {no} 器械:脊柱B包",
        "Fix what the reason says, then tap Resubmit; to correct a value send 'resubmit {no} field:value'.",
    ),
    "notice.resubmitted_status": ("已重新提交为 {no}", "Resubmitted as {no}"),
    "task.btn.resubmit": ("重新提交", "Resubmit"),
    "task.f.title": ("事项", "Task"),
    "task.f.supersedes": ("重新提交自", "Resubmits"),
    "task.status.resubmitted": ("，已重新提交为 {no}", "; resubmitted as {no}"),
    "task.due_needed": ("（需在 {need} 前备好{lead}）", " (needed by {need}{lead})"),
    "task.lead_days": ("，提前 {n} 天", ", {n} day(s) ahead"),
    "task.lead_hours": ("，提前 {n} 小时", ", {n} h ahead"),
    # ---- the digest's follow-ups and the week's objections (issue 12) ----
    "followup.today": ("今日", "today"),
    "followup.title": (
        "复盘：{rep} {when}计划完成率 {rate}（{done}/{items}）",
        "Review: {rep}, plan completion {when} {rate} ({done}/{items})",
    ),
    "followup.desc": (
        "计划完成率低于目标。请和代表复盘，完成后点「已复盘」；可点「备注」记录原因和改进。",
        "Plan completion is below target. Review it with the rep, then tap Reviewed; Note records why and what next.",
    ),
    "followup.f.open": ("未完成", "Not visited"),
    "followup.none_open": ("（无）", "(none)"),
    "followup.f.note": ("备注", "Note"),
    "followup.f.no": ("编号", "No."),
    "followup.status_reviewed": ("✅ {who} 已复盘", "✅ Reviewed by {who}"),
    "followup.btn.reviewed": ("已复盘", "Reviewed"),
    "followup.btn.note": ("备注", "Note"),
    "followup.not_yours": ("这张复盘卡是发给代表的经理的，你不能处理。", "This follow-up is for the rep's manager."),
    "followup.already": ("{who} 已经复盘过了。", "{who} has reviewed it already."),
    "followup.empty_note": ("备注不能为空，请直接输入备注内容。", "The note is empty; type the note."),
    "followup.reviewed_ok": ("✅ {no} 已标记复盘：{rep}。", "✅ {no} marked reviewed: {rep}."),
    "followup.ask_note": ("请直接输入 {no} 的备注（原因、改进措施）。", "Type the note for {no} (why, what next)."),
    "followup.noted_ok": ("📝 {no} 已记下备注。", "📝 Note saved on {no}."),
    "objections.title": ("本周客户异议 Top3（{start} 至 {end}）", "Top objections this week ({start} to {end})"),
    "objections.desc": (
        "代表拜访中听到最多的异议，供市场部准备应对材料。",
        "What reps heard most on their visits, for marketing's material.",
    ),
    "objections.none": ("本周拜访没有记录到异议。", "No objections were logged on visits this week."),
    "objections.count": ("{count} 次", "{count} times"),
    "objections.examples": ("，例如：{examples}", "; e.g. {examples}"),
    # ---- visit plans (issue 12; handlers/plans.py, bot/services/plans.py, docs/plans.md) ----
    "help.plan": (
        "· 计划 明天 浙一 浙二 目的:新品试用 — 做拜访计划（今天/明天/周三/12-05/本周）；我的计划 — 看完成情况；"
        "取消计划 P12 或 取消计划 浙一 明天",
        "· plan tomorrow <hospitals> purpose:… — plan visits (today/tomorrow/wed/12-05/this week); my plan — "
        "what is done; cancel plan P12",
    ),
    "help.plan_manager": (
        "· 计划 王磊 明天 浙一 — 为下属安排计划；我的计划 王磊 — 看下属的计划",
        "· plan <rep> tomorrow <hospitals> — plan for your rep; my plan <rep> — see their plan",
    ),
    "field.plan_when": ("日期", "Date"),
    "field.plan_customers": ("医院", "Hospital"),
    "field.plan_purpose": ("目的", "Purpose"),
    "plan.ask.when": (
        "计划哪天？例如 今天、明天、周三、12-05，或 本周（本周内任意一天拜访都算完成）",
        "Which day? e.g. today, tomorrow, wed, 12-05, or this week (a visit any day that week does it)",
    ),
    "plan.ask.customers": (
        "计划拜访哪些医院？可一次写几家，用空格分开",
        "Which hospitals? Several, separated by spaces",
    ),
    "plan.ask.choose": ("「{text}」可能是以下医院，请选择：", '"{text}" could be one of these hospitals:'),
    "plan.ask.purpose": ("拜访目的？", "Purpose of the visits?"),
    "plan.ask.hint": (
        "随时可发「字段:值」更正（如 日期:周四），或「取消」放弃。",
        "Send 'field:value' at any time to correct (e.g. date:thu), or 'cancel' to abandon.",
    ),
    "plan.edit_hint": ("请发送「字段:值」，例如 日期:周四 或 医院:浙二。", "Send 'field:value', e.g. date:thu."),
    "plan.bad_when": ("没看懂日期「{value}」。", 'Could not read the date "{value}".'),
    "plan.unknown_customer": (
        "找不到医院「{text}」，没有计划它。{suggest}",
        'No hospital matches "{text}"; it is not planned. {suggest}',
    ),
    "plan.past_day": (
        "{day} 已经过去，不能再做计划（今天是 {today}）。",
        "{day} is in the past and cannot be planned (today is {today}).",
    ),
    "plan.whose": (
        "请写明为谁安排，例如：计划 王磊 明天 浙一",
        "Say whose plan it is, e.g. plan <rep> tomorrow <hospital>",
    ),
    "plan.not_your_rep": ("{name} 不是你团队的成员，不能查看或安排其计划。", "{name} is not in your team."),
    "plan.span.today": ("今天（{day}）", "today ({day})"),
    "plan.span.tomorrow": ("明天（{day}）", "tomorrow ({day})"),
    "plan.span.day": ("{day}", "{day}"),
    "plan.span.this_week": ("本周", "this week"),
    "plan.span.next_week": ("下周（{day} 起）", "next week (from {day})"),
    "plan.span.week": ("{day} 起的一周", "the week from {day}"),
    "plan.saved": ("✅ 已计划 {span}：{items}", "✅ Planned for {span}: {items}"),
    "plan.saved_for": ("✅ 已为 {rep} 计划 {span}：{items}", "✅ Planned for {rep}, {span}: {items}"),
    "plan.already": ("已在计划中，未重复添加：{names}", "Already planned, not added again: {names}"),
    "plan.nothing_new": ("{span} 的这些医院都已在计划中，没有新增：{names}", "All already planned for {span}: {names}"),
    "plan.assigned_notice": ("{manager} 为你安排了计划：{span} {items}", "{manager} planned for you: {span} {items}"),
    "plan.purpose_suffix": ("（目的：{purpose}）", " (purpose: {purpose})"),
    "plan.view_header": ("{rep}的计划", "{rep}'s plan"),
    "plan.view_today": ("今天 {day}（完成 {done}/{total}）", "Today {day} ({done}/{total} done)"),
    "plan.view_week": ("本周 {start} 起（完成 {done}/{total}）", "This week from {start} ({done}/{total} done)"),
    "plan.view_none": ("（无）", "(none)"),
    "plan.view_whose": ("发「我的计划 王磊」查看下属的计划。", "Send 'my plan <rep>' to see a rep's plan."),
    "plan.view_empty": (
        "今天和本周还没有计划。发「计划 明天 浙一 浙二」做计划。",
        "No plan for today or this week. Send 'plan tomorrow <hospitals>'.",
    ),
    "plan.view_line": ("{mark} {no} {customer}{when}{purpose}", "{mark} {no} {customer}{when}{purpose}"),
    "plan.view_week_item": ("（本周内）", " (this week)"),
    "plan.view_day_item": ("（{day}）", " ({day})"),
    "plan.view_legend": (
        "✓ 已拜访  ○ 未完成；取消发「取消计划 P编号」",
        "✓ visited  ○ open; cancel: 'cancel plan P<no>'",
    ),
    "plan.cancelled": ("已取消计划：{items}", "Plan cancelled: {items}"),
    "plan.cancel_usage": (
        "请写明要取消的计划，例如 取消计划 P12 或 取消计划 浙一 明天",
        "Say which, e.g. cancel plan P12 or cancel plan <hospital> tomorrow",
    ),
    "plan.cancel_not_found": (
        "没有找到「{text}」的未完成计划，发「我的计划」查看编号。",
        'No open plan item for "{text}"; send "my plan" to see the numbers.',
    ),
    "plan.cancel_nothing": ("没有可取消的计划。", "Nothing to cancel."),
    "plan.no_such_item": ("没有计划 {no}（或已取消），发「我的计划」查看编号。", "No open plan item {no}."),
    "plan.cancelled_notice": ("{manager} 取消了你的计划：{items}", "{manager} cancelled your plan: {items}"),
    "plan.visit_done": ("✓ 完成计划：{items}", "✓ Plan done: {items}"),
    "plan.morning": ("☀️ 今天的拜访计划（{count} 家）：\n{lines}", "☀️ Today's plan ({count}):\n{lines}"),
    "plan.nudge": (
        "⏰ 今天还有 {count} 家计划未拜访：\n{lines}\n拜访后发「拜访 医院 …」记录即可自动完成。",
        "⏰ {count} planned visit(s) still open today:\n{lines}\nLog the visit and the item is done.",
    ),
    # ---- issue 12: imported visits (salesbot import visits; docs/imports.md) ----
    "visit.imported_locked": (
        "拜访 {no} 是从表格导入的历史记录，不能在聊天里修改。如需更正，请联系管理员修改表格后重新导入。",
        "Visit {no} was imported from a spreadsheet and cannot be edited in chat. To correct it, ask an admin to fix "
        "the file and import it again.",
    ),
    "visit.imported_no_unlock": (
        "拜访 {no} 是从表格导入的历史记录，不能解锁。如需更正，请修改表格后重新导入（salesbot import visits）。",
        "Visit {no} was imported from a spreadsheet and cannot be unlocked. To correct it, fix the file and import "
        "it again (salesbot import visits).",
    ),
    # ---- the manager digest (issue 12: 日报 / 周报 / 月报; bot/services/digest.py, cards/templates/digest.j2) ----
    "digest.not_allowed": (
        "日报只对代表、经理和总监开放。",
        "Digests are for reps, managers and directors.",
    ),
    "digest.not_in_scope": ("{name} 不在你的团队里。", "{name} is not in your team."),
    "digest.no_such_rep": (
        "你的团队里没有「{name}」。发「日报」看整个团队，或「日报 王磊」看一位代表。",
        "Nobody called '{name}' in your team. Send 'digest' for the team, or 'digest <name>' for one rep.",
    ),
    "digest.ambiguous_rep": (
        "团队里有几位「{name}」，请用账号区分：{ids}",
        "Several people in your team are called '{name}'; use their user id: {ids}",
    ),
    "digest.bad_date": (
        "「{text}」不是有效日期，例如 日报 2026-12-01",
        "'{text}' is not a date; e.g. digest 2026-12-01",
    ),
    "digest.title.day": ("日报 {date}（{weekday}）", "Daily digest {date} ({weekday})"),
    "digest.title.week": ("周报 {date} 至 {end}", "Weekly digest {date} to {end}"),
    "digest.title.month": ("月报 {month}", "Monthly digest {month}"),
    "digest.title_team": ("{period} · 团队 {n} 人", "{period} · team of {n}"),
    "digest.title_one": ("{period} · {name}", "{period} · {name}"),
    "digest.weekday.1": ("周一", "Mon"),
    "digest.weekday.2": ("周二", "Tue"),
    "digest.weekday.3": ("周三", "Wed"),
    "digest.weekday.4": ("周四", "Thu"),
    "digest.weekday.5": ("周五", "Fri"),
    "digest.weekday.6": ("周六", "Sat"),
    "digest.weekday.7": ("周日", "Sun"),
    "digest.s.plan": ("计划完成（目标 {threshold}）", "Plan completion (target {threshold})"),
    "digest.plan_total": (
        "完成率 {completion}（{done}/{items}），计划客户到访率 {reach}",
        "Completion {completion} ({done}/{items}), planned customers reached {reach}",
    ),
    "digest.no_plan": ("这段时间没有拜访计划", "No visit plans for this period"),
    "digest.rep_below": ("{name} {completion}（{done}/{items}）", "{name} {completion} ({done}/{items})"),
    "digest.all_on_plan": ("全部代表达标", "Every rep is on plan"),
    "digest.visits_total": ("拜访 {visits} 次", "{visits} visit(s)"),
    "digest.s.exceptions": ("需要关注", "Needs attention"),
    "digest.no_location": ("{n} 次拜访没有定位", "{n} visit(s) without location"),
    "digest.no_location_none": ("所有拜访都有定位", "Every visit has a location"),
    "digest.a_coverage": (
        "A 类客户本月达标 {coverage}（每月 {frequency} 次），已拜访过 {touched}",
        "A customers on frequency this month {coverage} ({frequency} a month), seen at least once {touched}",
    ),
    "digest.a_gap": ("{n} 家 A 类客户超过 {days} 天未拜访", "{n} A customer(s) not visited for {days} days"),
    "digest.a_gap_names": ("：{names}{more}", ": {names}{more}"),
    "digest.and_more": (" 等 {n} 家", " and others ({n} in all)"),
    "digest.sep": ("、", ", "),
    "digest.open_followup": ("{name} {day} 的复盘还没完成", "Review of {name} for {day} still open"),
    "digest.s.requests": ("支持申请与任务", "Support requests and tasks"),
    "digest.requests_total": (
        "新申请 {requests} 个；任务卡 新建 {opened}，已响应 {claimed}，完成 {done}",
        "{requests} new request(s); task cards: {opened} opened, {claimed} answered, {done} done",
    ),
    "digest.cards_late": ("超时 {overdue} 张，升级中 {escalated} 张", "{overdue} overdue, {escalated} escalated"),
    "digest.dept_response": (
        "{department} 首次响应 中位 {median}，P90 {p90}，{target} 小时内 {share}",
        "{department} first response: median {median}, p90 {p90}, within {target} h {share}",
    ),
    "digest.minutes": ("{n} 分钟", "{n} min"),
    "digest.hours": ("{n} 小时", "{n} h"),
    "digest.s.objections": ("客户异议 Top 3", "Top 3 objections"),
    "digest.objection": ("{objection} {n} 次", "{objection}: {n}"),
    "digest.no_objections": ("没有记录异议", "No objections recorded"),
    "digest.more_hint": (
        "发「日报 详情」看每位代表和部门；「日报 王磊」看一位代表",
        "Send 'digest details' for every rep and department; 'digest <name>' for one rep",
    ),
    "digest.s.reps": ("每位代表", "Per rep"),
    "digest.h.rep": ("代表", "Rep"),
    "digest.h.visits": ("拜访", "Visits"),
    "digest.h.plan": ("计划完成", "Plan done"),
    "digest.h.completion": ("完成率", "Completion"),
    "digest.h.no_location": ("无定位", "No location"),
    "digest.s.departments": ("每个部门", "Per department"),
    "digest.h.department": ("部门", "Department"),
    "digest.h.cards": ("新任务卡", "New cards"),
    "digest.h.median": ("响应中位", "Median"),
    "digest.h.p90": ("响应P90", "p90"),
    "digest.h.within": ("{target}小时内", "Within {target} h"),
    "digest.h.overdue": ("超时", "Overdue"),
    "digest.s.a_gaps": ("超过 {days} 天未拜访的 A 类客户", "A customers not visited for {days} days"),
    "digest.gap_line": ("{customer}：{days}", "{customer}: {days}"),
    "digest.never": ("从未拜访", "never visited"),
    "digest.days": ("{n} 天", "{n} days"),
    "chip.digest": ("日报", "Digest"),
    # ---- chart ----
    "chart.title": ("计划完成率 · 近{n}个工作日", "Plan completion · last {n} working days"),
    "chart.team_of": ("{name}的团队", "{name}'s team"),
    "chart.everyone": ("全部代表", "All reps"),
    "chart.subtitle": ("{who} · {n} 人 · 截至 {date}（{weekday}）", "{who} · {n} reps · up to {date} ({weekday})"),
    "chart.total": ("{n}日合计", "{n} days"),
    "chart.more_ok": ("另有 {n} 人均不低于 {threshold}（或没有计划）", "{n} more, none below {threshold}"),
    "chart.more_below": (
        "另有 {n} 人未列出，其中 {below} 人低于 {threshold}",
        "{n} more, {below} of them below {threshold}",
    ),
    "chart.legend_good": ("达标（≥ {threshold}）", "on target (≥ {threshold})"),
    "chart.legend_mid": ("{low}–{threshold}", "{low}–{threshold}"),
    "chart.legend_low": ("低于 {low}", "below {low}"),
    "chart.legend_none": ("{dash} 当天没有计划", "{dash} no plan that day"),
    "chart.caption_below": (
        "计划完成率图：近{n}个工作日，{below} 人低于 {threshold}",
        "Plan completion chart: last {n} working days, {below} below {threshold}",
    ),
    "chart.caption_ok": (
        "计划完成率图：近{n}个工作日，没有人低于 {threshold}",
        "Plan completion chart: last {n} working days, nobody below {threshold}",
    ),
    "chart.filename": ("计划完成率-{date}.png", "plan-completion-{date}.png"),
    # ---- dtin (DingTalk inbound) ----
    "dingtalk.unsupported": (
        "暂不支持这种消息。请发文字、图片、语音或文件。",
        "This kind of message is not supported yet; please send text, a picture, a voice message or a file.",
    ),
    # ---- dtout: DingTalk outbound (issue 13; bot/channels/dingtalk/{quota,actions}.py) ----
    "dingtalk.quota_warning": (
        "提醒管理员：本月（{month}）钉钉接口已用 {calls} 次，额度 {quota} 次，已过八成。用完后消息要到下个月才能发出，"
        "请考虑升级钉钉版本或减少推送。",
        "Admin notice: {calls} of this month's ({month}) {quota} DingTalk API calls are used, over 80 %. Once they "
        "run out, messages wait until next month: consider a higher DingTalk edition or fewer notices.",
    ),
    "dingtalk.act_title": ("销售助手", "Sales assistant"),
    "dingtalk.act_done": (
        "已提交「{label}」。结果会在钉钉里告诉你，可以关掉这个页面了。",
        "Sent: {label}. The result comes in DingTalk; you can close this page.",
    ),
    "dingtalk.act_button": ("这个操作", "this action"),
    "dingtalk.act_used": (
        "这个按钮已经点过了，不会重复提交。",
        "This button was already used; nothing was sent again.",
    ),
    "dingtalk.act_expired": (
        "这个按钮已过期，请在钉钉里找最新的消息再点。",
        "This button has expired; use the latest message in DingTalk.",
    ),
    "dingtalk.act_invalid": ("这个链接无效。", "This link is not valid."),
    "dingtalk.act_busy": ("系统忙，请稍后再点一次。", "The system is busy; please tap again in a moment."),
    # ---- att ----
    "attachment.too_large": (
        "文件超过 {size}，没有收下，请压缩后再发。",
        "The file is over {size} and was not kept; please compress it and send it again.",
    ),
    "attachment.type_refused": (
        "这种文件收不了，请改发照片、PDF、办公文档、文本、视频或语音。",
        "This kind of file cannot be kept; send a photo, PDF, Word, Excel, PowerPoint, text, video or voice file.",
    ),
    # ---- activity chat ----
    "activity.bad_attendees": (
        "参会人数「{value}」不对，请写 0 或正整数，如 参会:3。",
        'Attendees "{value}" is not a number; write 0 or more, e.g. attendees:3.',
    ),
    "activity.bad_day": (
        "日期「{value}」看不懂，请写 今天、昨天 或 12-01 这样的日期。",
        'Cannot read the date "{value}"; write today, yesterday or a date like 12-01.',
    ),
    "activity.too_long": ("名称太长了，最多 {limit} 个字。", "The name is too long: at most {limit} characters."),
    "activity.unknown_customer": (
        "没有找到医院「{text}」。{suggest}请写医院全称或常用简称后重发。",
        'No hospital matches "{text}". {suggest}Send again with the hospital\'s full or usual short name.',
    ),
    "activity.ambiguous": (
        "「{text}」对应多家医院：{names}。请写全称后重发。",
        '"{text}" matches several hospitals: {names}. Send again with the full name.',
    ),
    "activity.trial_logged": (
        "✅ 已记录试用：{customer} · {product}（{day}）",
        "✅ Trial logged: {customer} · {product} ({day})",
    ),
    "activity.trial_already": (
        "这次试用已记录过：{customer} · {product}（{day}），没有重复记录。",
        "This trial was already logged: {customer} · {product} ({day}); nothing added.",
    ),
    "activity.event_logged": (
        "✅ 已记录学术活动：{customer} · {event}，参会 {attendees} 人（{day}）",
        "✅ Event logged: {customer} · {event}, {attendees} attendees ({day})",
    ),
    "activity.event_already": (
        "这场活动已记录过：{customer} · {event}（{day}），没有重复记录。",
        "This event was already logged: {customer} · {event} ({day}); nothing added.",
    ),
    "activity.choose": ("「{text}」可能是以下医院，请点选一家：", '"{text}" may be one of these hospitals; tap one:'),
    "activity.field.customer": ("医院", "Hospital"),
    "activity.field.name": ("名称", "Name"),
    "activity.field.attendees": ("参会人数", "Attendees"),
    "activity.ask.trial.customer": ("哪家医院的试用？请发医院名，如 浙一。", "Which hospital was the trial at?"),
    "activity.ask.trial.name": ("试用的是什么产品？", "Which product was tried?"),
    "activity.ask.trial.attendees": ("参会人数？", "How many attendees?"),
    "activity.ask.event.customer": ("哪家医院的活动？请发医院名，如 浙二。", "Which hospital was the event at?"),
    "activity.ask.event.name": ("活动名称是什么？如 骨科沙龙。", "What was the event called?"),
    "activity.ask.event.attendees": ("这家医院有几人参会？请发数字，如 3。", "How many attendees from the hospital?"),
    "activity.ask.hint": ("随时可以发「取消」放弃。", "Send 'cancel' at any time to stop."),
    "activity.edit_hint": ("请直接回答上面的问题，或发「取消」。", "Answer the question above, or send 'cancel'."),
    "help.activity": (
        "· 试用 浙一 超声刀X1 [日期] — 记录新品试用；学术 浙二 骨科沙龙 参会:3 [日期] — 记录学术活动",
        "· trial <hospital> <product> [date] — log a trial; event <hospital> <name> attendees:3 [date] — log an event",
    ),
    # ---- report ----
    "customer_report.since_missing": (
        "请用 --since 给出起始日期，例如 --since 2026-06-01。",
        "Give the first night with --since, e.g. --since 2026-06-01.",
    ),
    "customer_report.bad_since": (
        "起始日期「{value}」无效：请写成 年-月-日，例如 2026-06-01。",
        "Bad --since '{value}': write the date as YYYY-MM-DD, e.g. 2026-06-01.",
    ),
    "customer_report.since_future": (
        "起始日期 {since} 在今天（{today}）之后，还没有评分：请换一个更早的日期。",
        "--since {since} is after today ({today}): there are no scores yet; pick an earlier date.",
    ),
    "customer_report.bad_window": (
        "观察期「{value}」无效：请写 {lo} 到 {hi} 之间的天数，例如 --window 182（约 6 个月）。",
        "Bad --window '{value}': give a number of days from {lo} to {hi}, e.g. --window 182 (about 6 months).",
    ),
    "customer_report.bad_flag_days": (
        "推荐期「{value}」无效：请写 {lo} 到 {hi} 之间的天数，例如 --flag-days 30。",
        "Bad --flag-days '{value}': give a number of days from {lo} to {hi}, e.g. --flag-days 30.",
    ),
    "customer_report.bad_points": (
        "目标「{value}」无效：请写 0 到 100 之间的百分点，例如 --points 15。",
        "Bad --points '{value}': give percentage points from 0 to 100, e.g. --points 15.",
    ),
    "customer_report.bad_now": (
        "时间「{value}」无效：请写成 2026-12-01T09:00+08:00。",
        "Bad --now '{value}': write it as 2026-12-01T09:00+08:00.",
    ),
    "customer_report.team_unknown": (
        "没有这个人：{team}。--team 后面请写经理的账号，例如 mgr01。",
        "No such person: {team}. Give a manager's user id after --team, e.g. mgr01.",
    ),
    "customer_report.team_empty": (
        "{name}（{team}）下面没有人：--team 后面请写有下属的经理账号。",
        "Nobody reports to {name} ({team}): give the user id of a manager with a team after --team.",
    ),
    "customer_report.no_scores": (
        "{since} 至 {until} 没有客户评分，无法衡量：请等每晚评分跑过，或换一个有评分的起始日期。",
        "No scores from {since} to {until}, nothing to measure: wait for the nightly score, or pick a start "
        "with scores.",
    ),
    "customer_report.title": (
        "模型效果：{since} 至 {until} 的推荐，看之后 {window} 天（今天 {today}）",
        "Model check: recommendations of {since} to {until}, the {window} days after (today {today})",
    ),
    "customer_report.team": ("范围：{name}（{team}）的团队", "Scope: the team of {name} ({team})"),
    "customer_report.groups": (
        "推荐客户 {rec} 家，转化 {rec_rate}；其他 {oth} 家，转化 {oth_rate}",
        "recommended: {rec} customers, {rec_rate} converted; others: {oth}, {oth_rate} converted",
    ),
    "customer_report.sep": ("；", "; "),
    "customer_report.higher": ("高出 {diff} 个百分点（目标 ≥ {points}）", "{diff} points higher (target ≥ {points})"),
    "customer_report.lower": ("低 {diff} 个百分点（目标 ≥ {points}）", "{diff} points lower (target ≥ {points})"),
    "customer_report.no_compare_recommended": (
        "没有推荐客户，无法比较",
        "no recommended customers: nothing to compare",
    ),
    "customer_report.no_compare_others": ("没有其他客户，无法比较", "no other customers: nothing to compare"),
    "customer_report.recommended": ("推荐客户", "Recommended"),
    "customer_report.others": ("其他客户", "Others"),
    "customer_report.detail": (
        "{group}：采购增长 {by_purchases} 家，试用新品 {by_trials} 家；平均采购增长 {growth}，平均试用新品 {trials} 个",
        "{group}: {by_purchases} bought more, {by_trials} tried a new product; mean purchase growth {growth}, "
        "mean new products tried {trials}",
    ),
    "customer_report.partial": (
        "注意：观察期要到 {end} 才结束（今天 {today}），以上是截至今天的数字。",
        "Note: the window runs until {end} (today {today}): these are the figures so far.",
    ),
    "customer_report.definition": (
        "转化：之后 {window} 天的采购比之前同样长的时间多，或试用了以前没试过的新品。",
        "Converted: bought more in the {window} days after than in as long before, or tried a product never "
        "tried before.",
    ),
    # ---- view ----
    # 客户 浙二 (handlers/customers.py, cards/customer.py)
    "customer.usage": (
        "请在「客户」后写医院名，例如：客户 浙二",
        "Name the hospital after 'customer', e.g.: customer <hospital>",
    ),
    "customer.not_allowed": (
        "客户详情只对销售代表、经理、总监和市场部开放。",
        "Customer details are open to reps, managers, directors and the marketing department.",
    ),
    "customer.not_yours": (
        "「{name}」不是你或你团队负责、拜访或计划过的客户，看不到它的详情。",
        '"{name}" is not a customer you or your team look after, visited or planned; its details are not shown.',
    ),
    "customer.s.score": ("健康分", "Health score"),
    "customer.s.alerts": ("近 30 天预警", "Alerts, last 30 days"),
    "customer.s.visits": ("最近拜访", "Recent visits"),
    "customer.s.requests": ("进行中的申请", "Open requests"),
    "customer.s.plans": ("拜访计划", "Planned visits"),
    "customer.s.advice": ("经理建议", "Manager's advice"),
    "customer.none": ("暂无", "None"),
    "customer.no_grade": ("未定级", "none"),
    "customer.grade_label": ("等级：", "Grade: "),
    "customer.grade_current": ("当前 {grade}", "current {grade}"),
    "customer.grade_suggested": (" · 建议 {grade}", " · suggested {grade}"),
    "customer.grade_same": (" · 与健康分建议一致", " · as the score suggests"),
    "customer.rep": ("负责代表：{rep}", "Rep: {rep}"),
    "customer.no_score": ("还没有健康分：健康分每晚计算，明早可见。", "No score yet: scores are computed nightly."),
    "customer.score_label": ("健康分：", "Score: "),
    "customer.score_value": ("{score} 分", "{score}"),
    "customer.score_night": ("（{day} 夜间计算）", " (computed the night of {day})"),
    "customer.c.purchases": (
        "采购 {points} 分 — 近 {months} 个月采购 {amount}",
        "Purchases {points} — {amount} in the last {months} month(s)",
    ),
    "customer.c.trials": (
        "试用 {points} 分 — 近 {days} 天试用 {count} 次",
        "Trials {points} — {count} trial(s) in the last {days} days",
    ),
    "customer.c.events": (
        "学术 {points} 分 — 近 {days} 天参会 {count} 人次",
        "Events {points} — {count} attendee(s) in the last {days} days",
    ),
    "customer.trend": ("近 {weeks} 周：{figures}  {spark}", "Last {weeks} weeks: {figures}  {spark}"),
    "customer.score_only": (
        "拜访、申请、计划和经理建议只对代表及其经理显示。",
        "Visits, requests, plans and advice are shown to the rep and their managers only.",
    ),
    "customer.v.objection": ("异议：{objection}", "objection: {objection}"),
    "customer.v.note": ("内容：{note}", "note: {note}"),
    "customer.v.next": ("下一步：{next}", "next: {next}"),
    "customer.r.line": ("{no} {type_name} · {rep} {day} 提交 · {cards}", "{no} {type_name} · {rep} {day} · {cards}"),
    "customer.p.week": ("{day} 起当周", "week of {day}"),
    "customer.a.by": ("{author}（{day}）：", "{author} ({day}): "),
    "customer.plan_advice": ("   💡 经理建议：{text}", "   💡 Manager's advice: {text}"),
    # 建议 浙二 … (handlers/customers.py)
    "advice.usage": (
        "请写医院和建议，例如：建议 浙二 先约刘主任看新品试用",
        "Name the hospital and write the advice, e.g.: advice <hospital> meet the head of surgery first",
    ),
    "advice.empty": (
        "要给「{name}」留什么建议？请写在医院后面重发，例如：建议 浙二 先约刘主任看新品试用",
        'What is your advice for "{name}"? Send it after the hospital, e.g.: advice <hospital> <your advice>',
    ),
    "advice.not_allowed": (
        "只有经理、总监可以给客户留建议。",
        "Only managers and directors can leave advice for a customer.",
    ),
    "advice.not_your_team": (
        "「{name}」不是你团队代表负责的客户，不能给它留建议。",
        '"{name}" is not a customer of your team\'s reps; you cannot leave advice for it.',
    ),
    "advice.too_long": (
        "建议最多 {limit} 字，这条有 {length} 字，请精简后重发。",
        "Advice is at most {limit} characters; this one has {length}. Please shorten it.",
    ),
    "advice.saved": ("✅ 已给「{name}」留下建议，已通知 {rep}。", '✅ Advice for "{name}" saved; {rep} has been told.'),
    "advice.saved_no_rep": (
        "✅ 已给「{name}」留下建议（这家客户还没有负责代表，没有通知任何人）。",
        '✅ Advice for "{name}" saved (the customer has no rep yet, so nobody was told).',
    ),
    "advice.notice": ("💡 {author}给「{customer}」的建议：{text}", "💡 {author}'s advice for {customer}: {text}"),
    "help.customer": (
        "· 客户 浙二 — 看客户的等级、健康分与趋势、预警、最近拜访、申请、计划和经理建议",
        "· customer <hospital> — grade, health score and trend, alerts, visits, requests, plans and advice",
    ),
    "help.advice": (
        "· 建议 浙二 先约刘主任看新品试用 — 给团队的客户留建议（代表会收到，并在计划提醒中看到）",
        "· advice <hospital> <text> — leave advice for a team's customer (the rep is told and sees it before visits)",
    ),
    # ---- grades ----
    "grade.no_permission": (
        "你没有权限调级：调级由代表、经理或总监发起。",
        "Only reps, managers and directors change grades.",
    ),
    "grade.not_yours": (
        "你只能为自己负责的客户调级，{customer} 不是你负责的客户。",
        "You can only change the grade of your own customers; {customer} is not yours.",
    ),
    "grade.not_team": (
        "你只能为团队代表负责的客户调级，{customer} 不在你的团队。",
        "You can only change the grade of your team's customers; {customer} is not one of them.",
    ),
    "grade.pending": (
        "{customer} 已有一个待确认的调级申请 {no}，请等它处理完再提。",
        "{customer} already has a grade change {no} waiting for confirmation; wait until it is decided.",
    ),
    "grade.bad_grade": (
        "等级「{grade}」不存在，可选：{grades}。",
        'There is no grade "{grade}"; choose one of {grades}.',
    ),
    "grade.bad_word": (
        "「{text}」不是等级，请发一个等级，如 {grades}。",
        '"{text}" is not a grade; send one of {grades}.',
    ),
    "grade.same": ("{customer} 现在就是 {grade} 类，不用调。", "{customer} is grade {grade} already."),
    "grade.needs_reason": (
        "调级需要原因，请这样发：调级 浙二 A 原因:新品试用量大",
        "A grade change needs a reason: grade <hospital> A reason: …",
    ),
    "grade.reason_too_long": ("原因太长了，最多 {limit} 个字。", "The reason is too long: at most {limit} characters."),
    "grade.unknown": ("没有找到调级申请 {no}。", "There is no grade change {no}."),
    "grade.own_request": (
        "{no} 是你自己提的调级申请，需要由你的上级确认。",
        "{no} is your own request: your manager confirms it.",
    ),
    "grade.not_approver": ("调级申请 {no} 不由你确认。", "You are not the one who confirms {no}."),
    "grade.reject_needs_reason": (
        "驳回需要原因，请直接输入驳回原因。",
        "A rejection needs a reason; type it.",
    ),
    "grade.unknown_customer": (
        "没有找到医院「{text}」。{suggest}",
        'No hospital "{text}" found. {suggest}',
    ),
    "grade.choose": ("「{text}」可能是以下医院，请点选一家：", '"{text}" may be one of these hospitals; tap one:'),
    "grade.field.customer": ("医院", "Hospital"),
    "grade.field.grade": ("等级", "Grade"),
    "grade.field.reason": ("原因", "Reason"),
    "grade.ask.customer": ("调哪家医院的等级？请发医院名，如 浙二。", "Which hospital's grade? Send its name."),
    "grade.ask.grade": ("{customer} 调到哪个等级？", "Which grade for {customer}?"),
    "grade.ask.reason": (
        "调级的原因是什么？如 新品试用量大、学术活动参与积极。",
        "Why change the grade? e.g. many new-product trials.",
    ),
    "grade.ask.hint": ("随时可以发「取消」放弃。", "Send 'cancel' at any time to stop."),
    "grade.edit_hint": ("请直接回答上面的问题，或发「取消」。", "Answer the question above, or send 'cancel'."),
    "grade.requested_ok": (
        "✅ 已提交调级申请 {no}：{customer} {old} → {new}，等待 {who} 确认。",
        "✅ Grade change {no} sent: {customer} {old} → {new}, waiting for {who} to confirm.",
    ),
    "grade.requested_nobody": (
        "调级申请 {no} 已记录（{customer} {old} → {new}），但没有找到可以确认的人，请联系管理员。",
        "Grade change {no} is recorded ({customer} {old} → {new}) but nobody can confirm it; ask your admin.",
    ),
    "grade.direct_ok": (
        "✅ 已调级 {no}：{customer} {old} → {new}，已生效；拜访频次从下个月起按 {new} 类。",
        "✅ Grade changed {no}: {customer} {old} → {new}; visit frequency follows {new} from next month.",
    ),
    "grade.confirmed_ok": (
        "✅ 已同意调级 {no}：{customer} {old} → {new}；拜访频次从下个月起按 {new} 类。",
        "✅ Grade change {no} confirmed: {customer} {old} → {new}; frequency follows {new} from next month.",
    ),
    "grade.rejected_ok": ("已驳回调级申请 {no}（{customer} {old} → {new}）。", "Grade change {no} rejected."),
    "grade.ask_reject_reason": ("请直接输入驳回 {no} 的原因。", "Type the reason for rejecting {no}."),
    "grade.already": (
        "调级申请 {no} 已由 {who} {state}，无需再处理。",
        "Grade change {no} was already {state} by {who}.",
    ),
    "grade.state.pending": ("待确认", "pending"),
    "grade.state.confirmed": ("同意", "confirmed"),
    "grade.state.rejected": ("驳回", "rejected"),
    "grade.state.direct": ("直接调整", "changed"),
    "grade.notice.confirmed": (
        "✅ 你的调级申请 {no} 已通过（{who}）：{customer} {old} → {new}；拜访频次从下个月起按 {new} 类。",
        "✅ Your grade change {no} was confirmed by {who}: {customer} {old} → {new}, from next month.",
    ),
    "grade.notice.rejected": (
        "你的调级申请 {no}（{customer} {old} → {new}）被 {who} 驳回，等级不变。原因：{reason}",
        "Your grade change {no} ({customer} {old} → {new}) was rejected by {who}; the grade stays. Reason: {reason}",
    ),
    "grade.notice.rep_changed": (
        "你负责的客户 {customer} 等级已调整：{old} → {new}（{who}，{no}）；拜访频次从下个月起按 {new} 类。",
        "Your customer {customer} is now grade {new} (was {old}; {who}, {no}); frequency follows from next month.",
    ),
    "grade.notice.rep_rejected": (
        "你负责的客户 {customer} 的调级申请 {no}（{old} → {new}）被 {who} 驳回。原因：{reason}",
        "The grade change {no} of your customer {customer} ({old} → {new}) was rejected by {who}: {reason}",
    ),
    "grade.approve_usage": ("请这样发：同意调级 G3", "Send: approve grade G3"),
    "grade.reject_usage": ("请这样发：驳回调级 G3 原因:…", "Send: reject grade G3 reason: …"),
    "grade.none": ("无", "none"),
    "grade.title": ("调级申请：{customer} {old} → {new}", "Grade change: {customer} {old} → {new}"),
    "grade.desc": (
        "请确认：同意后立即生效，拜访频次从下个月起按新等级。",
        "Confirm: takes effect now, frequency from next month.",
    ),
    "grade.f.customer": ("客户", "Customer"),
    "grade.f.change": ("调整", "Change"),
    "grade.f.rep": ("负责代表", "Rep"),
    "grade.f.score": ("健康分", "Score"),
    "grade.f.reason": ("原因", "Reason"),
    "grade.f.requested_by": ("申请人", "Asked by"),
    "grade.f.no": ("编号", "No."),
    "grade.f.decision_reason": ("驳回原因", "Why not"),
    "grade.score": ("{score} 分", "{score}"),
    "grade.suggested": ("，建议 {grade} 类", ", suggests {grade}"),
    "grade.status.confirmed": ("{who} 已同意", "Confirmed by {who}"),
    "grade.status.rejected": ("{who} 已驳回", "Rejected by {who}"),
    "grade.status.direct": ("{who} 已直接调整", "Changed by {who}"),
    "grade.btn.approve": ("同意", "Confirm"),
    "grade.btn.reject": ("驳回", "Reject"),
    "help.grade": (
        "· 调级 浙二 A 原因:新品试用量大 — 申请调整客户等级，由经理确认",
        "· grade <hospital> A reason: … — ask to change a customer's grade; your manager confirms",
    ),
    "help.grade_manager": (
        "· 调级 浙二 A 原因:… — 为团队客户申请调级；同意调级 G3 / 驳回调级 G3 原因:… — 处理调级申请",
        "· grade <hospital> A reason: … — for your team's customers; approve grade G3 / reject grade G3 reason: …",
    ),
    "help.grade_director": (
        "· 调级 浙二 A 原因:… — 直接调整客户等级（留痕）；同意调级 G3 / 驳回调级 G3 原因:…",
        "· grade <hospital> A reason: … — change a grade directly (audited); approve grade G3 / reject grade G3",
    ),
    # ---- alerts ----
    "alerts.header": ("客户提醒（{day}）：{n} 条新提醒", "Customer alerts ({day}): {n} new"),
    "alerts.rep_header": ("【{name}】", "[{name}]"),
    "alerts.more": ("还有 {n} 条", "and {n} more"),
    "alerts.hint": ("发送「客户 {customer}」查看详情", "Send 「客户 {customer}」 for the details"),
    "alerts.grade": ("{grade} 类", "grade {grade}"),
    "alerts.no_grade": ("未分级", "no grade"),
    "alerts.about": ("（{grade}，{score} 分）", " ({grade}, {score} points): "),
    "alerts.about_grade": ("（{grade}）", " ({grade}): "),
    "alerts.component.purchases": ("采购", "purchases"),
    "alerts.component.trials": ("新品试用", "new-product trials"),
    "alerts.component.events": ("学术活动", "academic events"),
    "alerts.what.component_zero": ("{component}已连续 {weeks} 周为 0", "{component} at 0 for {weeks} weeks"),
    "alerts.what.score_drop": (
        "健康分 {weeks} 周内下降 {drop} 分（{before} → {score}）",
        "health score down {drop} points in {weeks} weeks ({before} → {score})",
    ),
    "alerts.what.no_visit": ("已 {days} 天未拜访", "not visited for {days} days"),
    "alerts.what.never_visited": ("从未拜访（建档 {days} 天）", "never visited (on file for {days} days)"),
    "alerts.what.worth_developing": (
        "值得开发：{component} {value} 分",
        "worth developing: {component} at {value} points",
    ),
    "alerts.what.same_objection": (
        "连续 {visits} 次拜访异议都是「{objection}」",
        "the last {visits} visits all raised 「{objection}」",
    ),
    "alerts.digest.section": ("客户提醒", "Customer alerts"),
    "alerts.digest.total": ("{since} 以来 {n} 条：{rules}", "{n} since {since}: {rules}"),
    "alerts.digest.count": ("{title} {n}", "{title} {n}"),
    "alerts.digest.more": ("还有 {n} 条，发送「客户 医院名」查看", "{n} more; send 「客户 <hospital>」 to see one"),
    "alerts.digest.rep": ("（{name}）", " ({name})"),
    "alerts.digest.no_rep": ("（无负责代表）", " (no rep)"),
    # ---- window ----
    "visit.window_closed": (
        "{month} 月的拜访已于 {cutoff} 截止提交，如需补录请联系管理员。",
        "Visits of month {month} closed for submission on {cutoff}; ask an admin to record this one.",
    ),
    "visit.window_closed_edit": (
        "{month} 月的拜访已于 {cutoff} 截止提交，如需修改请联系管理员解锁 {no}。",
        "Visits of month {month} closed for submission on {cutoff}; ask an admin to unlock {no} to correct it.",
    ),
    "hist.usage": (
        "格式：历史 <编号>，例如 历史 V12（拜访）、历史 R3（申请）、历史 T5（任务）、历史 G3（调级）",
        "Usage: trail <no>, e.g. trail V12 (visit), R3 (request), T5 (task), G3 (grade change)",
    ),
    "hist.not_found": (
        "找不到 {no}，或你没有权限查看它的历史。请检查编号。",
        "No {no} that you may see. Check the number.",
    ),
    "hist.header.v": ("拜访 {no} 的历史（从早到晚）：", "History of visit {no} (oldest first):"),
    "hist.header.r": ("申请 {no} 的历史（含各部门任务，从早到晚）：", "History of request {no} and its tasks:"),
    "hist.header.t": ("任务 {no} 的历史（从早到晚）：", "History of task {no} (oldest first):"),
    "hist.header.g": ("调级 {no} 的历史（从早到晚）：", "History of grade change {no} (oldest first):"),
    "hist.no_rows": ("（没有记录）", "(no entries)"),
    "hist.empty": ("（空）", "(empty)"),
    "hist.yes": ("是", "yes"),
    "hist.no": ("否", "no"),
    "hist.location.ok": ("已定位", "located"),
    "hist.location.missing": ("无定位", "no location"),
    "hist.channel.console": ("网页端", "web console"),
    "hist.channel.wecom": ("企业微信", "WeCom"),
    "hist.channel.dingtalk": ("钉钉", "DingTalk"),
    "hist.channel.import": ("表格导入", "file import"),
    "hist.channel.system": ("系统", "system"),
    "hist.field.distance_m": ("距离", "Distance"),
    "hist.field.unlocked_until": ("解锁至", "Unlocked until"),
    "hist.field.state": ("状态", "State"),
    "hist.field.holder": ("处理人", "Holder"),
    "hist.field.grade": ("等级", "Grade"),
    "hist.field.reason": ("原因", "Reason"),
    "hist.field.needed_at": ("需要时间", "Needed by"),
    "hist.field.dictated": ("语音录入", "Dictated"),
    "hist.field.department": ("部门", "Department"),
    "hist.action.visit.create": ("提交拜访", "submitted the visit"),
    "hist.action.visit.correct": ("修改拜访", "corrected the visit"),
    "hist.action.visit.location": ("补充定位", "added the location"),
    "hist.action.visit.unlock": ("解锁拜访", "unlocked the visit"),
    "hist.action.visit.import": ("从表格导入", "imported from a file"),
    "hist.action.visit.reimport": ("重新导入更新", "updated by a re-import"),
    "hist.action.request.create": ("提交申请", "submitted the request"),
    "hist.action.request.resubmit": ("重新提交申请", "resubmitted the request"),
    "hist.action.grade.request": ("申请调级", "asked for a grade change"),
    "hist.action.grade.direct": ("直接调级", "changed the grade directly"),
    "hist.action.grade.confirm": ("同意调级", "confirmed the grade change"),
    "hist.action.grade.reject": ("驳回调级", "rejected the grade change"),
    "hist.action.other": ("其他操作", "other action"),
    "sig.line": ("✍ 签名：{value}", "✍ Signed: {value}"),
    "sig.value": ("{name}「{meaning}」 {when}", '{name} "{meaning}" {when}'),
    "sig.meaning.review": ("审核通过", "review passed"),
    "sig.meaning.grade": ("同意调级", "grade change approved"),
    "sig.meaning.unlock": ("解锁", "unlock"),
    "sig.field": ("电子签名", "Signature"),
    "sig.code_sent": (
        "审批 {no} 需要二次验证：验证码 {code}（{minutes} 分钟内有效，仅发给你本人）。请回复「确认 {code}」完成审批。",
        "Approving {no} needs a second factor: code {code} (valid {minutes} min, only to you). Reply 'confirm {code}'.",
    ),
    "sig.code_wrong": (
        "验证码不对，{no} 尚未审批。还可再试 {left} 次，请回复「确认 6位验证码」。",
        "Wrong code; {no} is not approved yet. {left} tries left: reply 'confirm <6-digit code>'.",
    ),
    "sig.code_expired": (
        "验证码已过期，{no} 尚未审批。请重新点「完成」获取新的验证码。",
        "The code has expired; {no} is not approved. Tap Done again for a new code.",
    ),
    "sig.code_locked": (
        "验证码错误次数过多，{no} 尚未审批。请重新点「完成」获取新的验证码。",
        "Too many wrong codes; {no} is not approved. Tap Done again for a new code.",
    ),
    # ---- export ----
    "export.yes": ("是", "yes"),
    "export.no": ("否", "no"),
    "export.location.ok": ("已定位", "located"),
    "export.location.missing": ("未定位", "no location"),
    "export.location.far": ("距离过远", "too far"),
    "export.channel.console": ("网页控制台", "web console"),
    "export.channel.wecom": ("企业微信", "WeCom"),
    "export.channel.dingtalk": ("钉钉", "DingTalk"),
    "export.channel.import": ("文件导入", "file import"),
    "export.channel.cli": ("命令行", "command line"),
    "export.channel.bot": ("机器人", "bot"),
    "export.plan_period.day": ("日", "day"),
    "export.plan_period.week": ("周", "week"),
    "export.plan_status.open": ("有效", "open"),
    "export.plan_status.cancelled": ("已取消", "cancelled"),
    "export.bad_kind": ("没有「{value}」这种导出，可选：{kinds}", 'No export "{value}": use {kinds}'),
    "export.bad_date": ("日期「{value}」无效，请写成 2026-11-01 这样", 'Bad date "{value}": use YYYY-MM-DD'),
    "export.bad_range": ("结束日期 {end} 早于开始日期 {start}", "The end {end} is before the start {start}"),
    "export.bad_format": ("格式「{value}」无效，可选：csv | xlsx", 'Bad format "{value}": use csv or xlsx'),
    "export.no_team": ("没有这个经理账号：{value}", "No such manager: {value}"),
    "export.denied": (
        "只有管理员和合规部可以导出记录。如需数据，请联系合规部。",
        "Only admins and the compliance department can export records. Ask compliance if you need data.",
    ),
    "export.usage": (
        "请这样写：导出 拜访|申请|任务|审计|计划 本月（也可写 上月、本周、2026-11、11-01~11-30）",
        "Write: export visits|requests|cards|audit|plans this month (or last month, this week, 2026-11, 11-01~11-30)",
    ),
    "export.bad_period": (
        "看不懂时间「{value}」。可以写：本月、上月、本周、2026-11、11-01~11-30",
        'Cannot read the period "{value}". Use: this month, last month, this week, 2026-11, 11-01~11-30',
    ),
    "export.sent": (
        "{kind}导出（{start} 至 {end}）：{rows} 行，文件 {filename}",
        "{kind} export ({start} to {end}): {rows} rows, file {filename}",
    ),
    "export.capped": (
        "只导出了前 {cap} 行（共 {total} 行）。完整导出请让管理员用命令行："
        "salesbot export {kind} --from {start} --to {end}",
        "Only the first {cap} of {total} rows. For all of them ask an admin to run: "
        "salesbot export {kind} --from {start} --to {end}",
    ),
    "export.empty": ("{start} 至 {end} 没有{kind}记录", "No {kind} from {start} to {end}"),
}


def normalize_locale(locale: str | None) -> str:
    """Map any user locale to one we have text for."""
    return EN if (locale or "").lower().startswith("en") else ZH


def t(locale: str | None, key: str, **params: Any) -> str:
    """The text for ``key`` in the user's locale, formatted with ``params``."""
    zh, en = CATALOG[key]
    text = en if normalize_locale(locale) == EN else zh
    return text.format(**params) if params else text


def fmt_when(when: datetime, tz: tzinfo) -> str:
    """An instant as people read it in the org's zone: 11-23 10:00."""
    return when.astimezone(tz).strftime("%m-%d %H:%M")


def fmt_distance(meters: float, locale: str | None) -> str:
    """Human distance, the one format of every card and reply: whole metres under 1 km (320 米), else kilometres to
    one decimal (1.2 公里); 999.6 m reads 1.0 公里, not 1000 米."""
    en = normalize_locale(locale) == EN
    if round(meters) < 1000:
        return f"{meters:.0f} m" if en else f"{meters:.0f} 米"
    return f"{meters / 1000:.1f} km" if en else f"{meters / 1000:.1f} 公里"
