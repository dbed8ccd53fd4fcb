"""The manager digest on demand (issue 12): 日报, 日报 昨天, 日报 2026-12-01, 周报, 月报, 日报 王磊, 日报 详情."""

from __future__ import annotations

from bot.core.intents import SendRich
from bot.core.routing import Context, Router, command
from bot.dialogs.engine import leaves_dialog
from bot.services import digest, digest_chart
from bot.services.digest_model import Period
from bot.services.digest_render import render_digest
from storage.vocab import Role

router = Router("digest")

DAILY = ("日报", "digest", "daily")
WEEKLY = ("周报", "weekly")
MONTHLY = ("月报", "monthly")
WHO = (Role.MANAGER, Role.DIRECTOR, Role.REP)


async def _show(ctx: Context, period: Period) -> None:
    answer = await digest.ask(ctx.session, ctx.settings, ctx.user, period, ctx.args, ctx.now)
    rich = render_digest(answer.digest, ctx.settings, ctx.locale, detail=answer.detail)
    ctx.intents.append(SendRich(channel=ctx.event.channel, user_ids=(ctx.user.id,), rich=rich))
    # A team's day digest: the chart of the last 7 working days follows (none for one rep or a week / month).
    ctx.intents.extend(
        await digest_chart.chart_intents(ctx.session, ctx.settings, ctx.user, answer.digest, ctx.event.channel, ctx.now)
    )


@router.route(command(*DAILY, roles=WHO), leaves_dialog)
async def show_daily_digest(ctx: Context) -> None:
    """A manager's team (a director's everyone, a rep's own) for a day: today, 昨天 or a date."""
    await _show(ctx, "day")


@router.route(command(*WEEKLY, roles=WHO), leaves_dialog)
async def show_weekly_digest(ctx: Context) -> None:
    """The same for the week (Monday–Sunday) holding the day."""
    await _show(ctx, "week")


@router.route(command(*MONTHLY, roles=WHO), leaves_dialog)
async def show_monthly_digest(ctx: Context) -> None:
    """The same for the calendar month holding the day."""
    await _show(ctx, "month")
