"""历史 V12 / R3 / T5 / G3 (issue 15): a record's audit trail, oldest first, for whoever may see the record."""

from __future__ import annotations

from bot.core.routing import Context, Router, command
from bot.dialogs.engine import leaves_dialog
from bot.services import history as svc
from bot.services import recipients

router = Router("history")

HISTORY = ("历史", "trail", "audittrail")


@router.route(command(*HISTORY), leaves_dialog)
async def show_history(ctx: Context) -> None:
    """When, who, through which channel, what, every change as 旧值 → 新值 and each approval's signature."""
    found = await svc.trail(ctx.session, ctx.user, ctx.args)
    settings = ctx.runtime.settings
    departments = {key: recipients.department_name(settings, key, ctx.locale) for key in settings.departments}
    ctx.reply("\n".join(svc.lines(svc.Reader(ctx.locale, settings.org.tz, departments), found)))
