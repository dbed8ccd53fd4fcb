"""Help, cancel, welcome and the fallback: the bot never stays silent."""

from __future__ import annotations

from bot.core.events import MediaMessage
from bot.core.routing import Context, Router, exact, is_card_action, is_enter, is_text
from storage.vocab import Role

router = Router("help")
fallback_router = Router("fallback")

HELP = ("帮助", "help", "?", "？", "菜单", "menu")
CANCEL = ("取消", "cancel", "算了", "退出")

_ROLE_LINES = {
    Role.REP: (
        "help.visit",
        "help.location",
        "help.my_visits",
        "help.correct",
        "help.request",
        "help.my_requests",
        "help.resubmit",
    ),
    Role.MANAGER: ("help.manager",),
    Role.DIRECTOR: ("help.manager", "help.escalation"),
    Role.MEMBER: ("help.member", "help.task"),
    Role.HEAD: ("help.member", "help.task", "help.escalation"),
    Role.ADMIN: ("help.unlock", "help.escalation"),
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
    """Anything else: a short hint, never silence."""
    text = ctx.text.strip()
    shown = text if len(text) <= 20 else text[:20] + "…"
    prefix = ctx.t("expired") + "\n" if ctx.conversation.expired else ""
    ctx.reply(prefix + ctx.t("fallback", text=shown))


@fallback_router.route()
async def unknown_event(ctx: Context) -> None:
    if isinstance(ctx.event, MediaMessage):
        ctx.reply(ctx.t("fallback.media"))
