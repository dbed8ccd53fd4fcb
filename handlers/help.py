"""Help, cancel, welcome and the fallback: the bot never stays silent."""

from __future__ import annotations

import hashlib

from bot.core.events import CardAction, MediaMessage
from bot.core.routing import Context, Router, exact, is_card_action, is_enter, is_text
from bot.services import commands
from bot.services.activity import MARKETING
from cards.suggest import SuggestedText, settled_suggestion, suggestion_card
from storage.vocab import Role

router = Router("help")
fallback_router = Router("fallback")

HELP = ("帮助", "help", "?", "？", "菜单", "menu")
CANCEL = ("取消", "cancel", "算了", "退出")
ADMIN_HELP = ("管理帮助", "admin help")

_ROLE_LINES = {
    Role.REP: (
        "help.visit",
        "help.location",
        "help.my_visits",
        "help.correct",
        "help.request",
        "help.my_requests",
        "help.resubmit",
        "help.plan",
        "help.activity",
        "help.customer",
        "help.grade",
    ),
    Role.MANAGER: ("help.manager", "help.plan_manager", "help.customer", "help.advice", "help.grade_manager"),
    Role.DIRECTOR: (
        "help.manager",
        "help.escalation",
        "help.queue_director",
        "help.plan_manager",
        "help.customer",
        "help.advice",
        "help.grade_director",
    ),
    Role.MEMBER: ("help.member", "help.task", "help.queue_member"),
    Role.HEAD: ("help.member", "help.task", "help.escalation", "help.queue_head"),
    Role.ADMIN: ("help.unlock", "help.escalation", "help.admin", "help.customer", "help.advice", "help.grade_director"),
}


@router.route(exact(*HELP))
async def show_help(ctx: Context) -> None:
    """What the sender's roles allow, one line each."""
    settings = ctx.runtime.settings
    hours = settings.visits.correction_window_hours
    en = ctx.locale == "en"
    types = "、".join(f"{rt.keywords[0]}={rt.name_en if en else rt.name_zh}" for rt in settings.request_types.values())
    lines = [ctx.t("help.header", name=ctx.user.name)]
    seen: set[str] = set()
    for role in ctx.user.roles or [Role.REP]:
        for key in _ROLE_LINES.get(role, ()):
            if key not in seen:
                seen.add(key)
                lines.append(ctx.t(key, hours=hours, types=types))
    if ctx.user.department == MARKETING:
        lines += [ctx.t(key) for key in ("help.activity", "help.customer") if key not in seen]
    lines.append(ctx.t("help.cancel"))
    ctx.reply("\n".join(lines))


@router.route(exact(*CANCEL))
async def cancel_dialog(ctx: Context) -> None:
    """Abandon whatever dialog is in progress."""
    if ctx.conversation.flow is None:
        ctx.reply(ctx.t("nothing_to_cancel"))
        return
    ctx.conversation.clear()
    ctx.reply(ctx.t("cancelled"))


@router.route(is_enter)
async def welcome(ctx: Context) -> None:
    ctx.reply(ctx.t("welcome"))


@fallback_router.route(is_card_action)
async def unknown_button(ctx: Context) -> None:
    ctx.reply(ctx.t("stale_button"))


@fallback_router.route(is_text)
async def unknown_text(ctx: Context) -> None:
    """Anything else, never silence: the closest command of the sender's own roles as a card whose button sends
    it (拜方 浙一 → 你是想「拜访 浙一」吗？), else a short hint naming their commands."""
    text = ctx.text.strip()
    shown = text if len(text) <= 20 else text[:20] + "…"
    prefix = ctx.t("expired") + "\n" if ctx.conversation.expired else ""
    found = commands.fallback(
        text, ctx.user.roles, ctx.runtime.dispatcher.commands(), ctx.runtime.settings.request_types, ctx.locale
    )
    if found.suggestion is not None:
        ref = "sg-" + hashlib.sha256(f"{ctx.event.channel}:{ctx.event.dedup_key}".encode()).hexdigest()[:20]
        card = suggestion_card(ref, ctx.locale, found.suggestion)
        if prefix:
            ctx.reply(prefix.strip())
        if card is not None:
            ctx.reply_card(card)
        else:
            ctx.reply(ctx.t("fallback.suggest", text=found.suggestion))
        return
    if found.commands:
        ctx.reply(prefix + ctx.t("fallback.hint", text=shown, commands="、".join(found.commands)))
    else:
        ctx.reply(prefix + ctx.t("fallback.help_only", text=shown))


@fallback_router.route()
async def unknown_event(ctx: Context) -> None:
    if isinstance(ctx.event, MediaMessage):
        ctx.reply(ctx.t("fallback.media"))


# ---- the fallback's suggestion, the admin's guide (console issue 11) ------------------------------------------


@router.tap(SuggestedText)
async def send_suggested(ctx: Context, tap: SuggestedText) -> None:
    """发送 on a suggestion: the card says it was sent, and the text is handled as if typed."""
    if isinstance(ctx.event, CardAction) and ctx.event.card_ref:
        ctx.update_card(settled_suggestion(ctx.event.card_ref, ctx.locale, tap.text))
    await ctx.runtime.dispatcher.dispatch(ctx.retyped(tap.text))


@router.route(exact(*ADMIN_HELP, roles=(Role.ADMIN,)))
async def show_admin_help(ctx: Context) -> None:
    """Admin: how to import the org and customer files and check the configuration (the CLI's commands)."""
    if Role.ADMIN not in (ctx.user.roles or []):
        ctx.reply(ctx.t("no_permission"))
        return
    ctx.reply(ctx.t("help.admin_guide"))
