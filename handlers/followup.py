"""The digest's follow-up cards (issue 12): 已复盘 settles the card; 备注 takes the next message as the note."""

from __future__ import annotations

from pydantic import BaseModel, ValidationError

from bot.core.routing import Context, Router, in_flow, is_text
from bot.services import followups
from cards.followup import FollowupOp, FollowupTap, FollowupView, followup_card, followup_no

router = Router("followup")

NOTE_FLOW = "followup_note"


class NoteState(BaseModel):
    followup_id: int


def _show(ctx: Context, view: FollowupView) -> None:
    today = ctx.now.astimezone(ctx.runtime.settings.org.tz).date()
    ctx.update_card(followup_card(view, ctx.locale, today))


@router.tap(FollowupTap)
async def tap_followup(ctx: Context, tap: FollowupTap) -> None:
    if tap.op == FollowupOp.REVIEWED:
        view = await followups.review(ctx.session, ctx.user, tap.followup_id, ctx.now, ctx.event.channel)
        _show(ctx, view)
        ctx.reply(ctx.t("followup.reviewed_ok", no=followup_no(tap.followup_id), rep=view.rep_name))
        return
    ctx.conversation.start(NOTE_FLOW, NoteState(followup_id=tap.followup_id).model_dump())
    ctx.reply(ctx.t("followup.ask_note", no=followup_no(tap.followup_id)))


@router.route(in_flow(NOTE_FLOW), is_text)
async def followup_note(ctx: Context) -> None:
    """The note typed after 备注."""
    try:
        state = NoteState.model_validate(ctx.conversation.data)
    except ValidationError:
        state = None
    ctx.conversation.clear()
    if state is None:
        ctx.reply(ctx.t("stale_button"))
        return
    view = await followups.add_note(ctx.session, ctx.user, state.followup_id, ctx.text, ctx.now, ctx.event.channel)
    _show(ctx, view)
    ctx.reply(ctx.t("followup.noted_ok", no=followup_no(state.followup_id)))
