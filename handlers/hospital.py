"""The hospital a one-line command names (试用, 学术, 客户, 建议): matched by the matcher every command uses.

An ambiguous name gets a card 「浙大」可能是以下医院 with one button per hospital; a button sends the command's line
again with the full name, handled as if typed (``help.send_suggested``). An unknown name gets a message with the
nearest names, if any. Not a router: the feature handlers call ``resolve``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from bot.core.routing import Context
from bot.dialogs.engine import FormDialog
from cards.model import Button, Card
from cards.payload import PayloadError
from cards.suggest import SuggestedText


def choice_card(ctx: Context, word: str, names: list[str], line_for: Callable[[str], str], prefix: str) -> Card | None:
    """A button per hospital, each sending ``line_for(name)``; None when a line is too long for a button. The ref
    is stable for the message (``prefix`` + a hash of its dedup key), so a platform retry updates the same card."""
    buttons = []
    for name in names:
        try:
            buttons.append(Button.of(name, SuggestedText(line_for(name))))
        except PayloadError:
            return None
    ref = prefix + hashlib.sha256(f"{ctx.event.channel}:{ctx.event.dedup_key}".encode()).hexdigest()[:20]
    return Card(ref=ref, title=ctx.t("activity.choose", text=word), buttons=buttons)


async def resolve(ctx: Context, word: str, line_for: Callable[[str], str], prefix: str) -> tuple[int, str] | None:
    """The (id, name) of the hospital ``word`` names; otherwise the reply saying why (ambiguous: the choice card,
    or the names when a line is too long for buttons; unknown: the nearest names) and None."""
    matcher = await ctx.runtime.directory.matcher(ctx.session)
    result = matcher.match(word)
    if result.best is not None:
        return result.best.id, result.best.name
    names = "、".join(c.entry.name for c in result.candidates)
    if result.status == "ambiguous":
        card = choice_card(ctx, word, [c.entry.name for c in result.candidates], line_for, prefix)
        if card is not None:
            ctx.reply_card(card)
        else:
            ctx.reply(ctx.t("activity.ambiguous", text=word, names=names))
    else:
        suggest = ctx.t("visit.suggest", names=names) if names else ""
        ctx.reply(ctx.t("activity.unknown_customer", text=word, suggest=suggest))
    return None


async def match_in_dialog(d: FormDialog[Any], word: str, unknown_key: str) -> tuple[int, str] | None:
    """A dialog's hospital answer: the (id, name) it names; else the choices offered (ambiguous) or a note
    ``unknown_key`` with the nearest names (unknown), and None."""
    matcher = await d.ctx.runtime.directory.matcher(d.ctx.session)
    result = matcher.match(word)
    if result.best is not None:
        return result.best.id, result.best.name
    options = [(c.entry.name, str(c.entry.id)) for c in result.candidates]
    if result.status == "ambiguous":
        d.offer("customer", options)
        return None
    names = "、".join(name for name, _ in options)
    suggest = d.ctx.t("visit.suggest", names=names) if names else ""
    d.note(unknown_key, text=word, suggest=suggest)
    return None
