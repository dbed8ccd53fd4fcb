"""Seeing a customer and the manager's advice (issue 14, docs/customers.md "Seeing a customer"):
``客户 浙二`` and ``建议 浙二 先约刘主任看新品试用``.

Both words must stand apart from what follows (``客户 浙二``, not ``客户浙二``): a sentence that merely starts with
them (``客户说下周再来``, ``建议先送样``) stays plain text — a rep's answer to a department's question, a dialog's
answer, or the fallback."""

from __future__ import annotations

from bot.core.intents import SendRich
from bot.core.routing import Context, Filter, Router, command
from bot.dialogs.engine import leaves_dialog
from bot.infra import i18n
from bot.infra.words import normalize_text
from bot.services import customer_view as svc
from cards.customer import render
from handlers import hospital
from storage.models import Customer
from storage.vocab import Role

router = Router("customers")

CUSTOMER = ("客户", "customer")
ADVICE = ("建议", "advice")
_VIEWERS = (Role.REP, Role.MANAGER, Role.DIRECTOR, Role.ADMIN)
_ADVISERS = (Role.MANAGER, Role.DIRECTOR, Role.ADMIN)


def _set_apart(words: tuple[str, ...]) -> Filter:
    """A filter: the keyword is the whole text or followed by a space (see the module docstring)."""

    def check(ctx: Context) -> bool:
        norm = normalize_text(ctx.text).strip().lower()
        for word in sorted(words, key=len, reverse=True):
            if norm.startswith(word.lower()):
                rest = norm[len(word) :]
                return not rest or rest[0].isspace()
        return False

    return check


async def _customer(ctx: Context, keyword: str, word: str, rest: str = "") -> Customer | None:
    """The hospital ``word`` names, by the matcher every command uses; else the reply saying why and None."""
    found = await hospital.resolve(ctx, word, lambda name: f"{keyword} {name} {rest}".strip(), "cv-")
    return None if found is None else await ctx.session.get(Customer, found[0])


@router.route(command(*CUSTOMER, roles=_VIEWERS), _set_apart(CUSTOMER), leaves_dialog)
async def show_customer(ctx: Context) -> None:
    """``客户 浙二``: grade and score with its trend, alerts, last visits, open requests, plan items, advice."""
    if not svc.may_use(ctx.user):
        ctx.reply(ctx.t("customer.not_allowed"))
        return
    word = " ".join(ctx.args.split())
    if not word:
        ctx.reply(ctx.t("customer.usage"))
        return
    customer = await _customer(ctx, CUSTOMER[0], word)
    if customer is None:
        return
    shown = await svc.view(ctx.session, ctx.settings, ctx.user, customer, now=ctx.now, locale=ctx.locale)
    rich = render(shown, ctx.locale, ctx.settings.org.tz)
    ctx.intents.append(SendRich(channel=ctx.event.channel, user_ids=(ctx.user.id,), rich=rich))


@router.route(command(*ADVICE, roles=_ADVISERS), _set_apart(ADVICE), leaves_dialog)
async def leave_advice(ctx: Context) -> None:
    """``建议 浙二 <建议内容>`` (a manager for their team's customers, a director or admin for any): stored, audited,
    the customer's rep told."""
    if not set(ctx.user.roles or []) & set(_ADVISERS):
        ctx.reply(ctx.t("advice.not_allowed"))
        return
    # The advice as typed (``ctx.args`` is width-normalised: it would turn ，into ,): the words after the keyword
    # and the hospital, which the filter keeps apart by spaces.
    parts = ctx.text.strip().split(maxsplit=2)
    words = [normalize_text(parts[1])] if len(parts) > 1 else []
    if not words:
        ctx.reply(ctx.t("advice.usage"))
        return
    text = parts[2] if len(parts) > 2 else ""
    customer = await _customer(ctx, ADVICE[0], words[0], text)
    if customer is None:
        return
    if not svc.clean_advice(text):
        await svc.check_may_advise(ctx.session, ctx.user, customer)
        ctx.reply(ctx.t("advice.empty", name=customer.name))
        return
    done = await svc.advise(
        ctx.session, actor=ctx.user, customer=customer, text=text, now=ctx.now, channel=ctx.event.channel
    )
    if done.rep is not None:
        rep = done.rep
        ctx.notify(
            rep,
            i18n.t(rep.locale, "advice.notice", author=ctx.user.name, customer=customer.name, text=done.advice.text),
        )
        ctx.reply(ctx.t("advice.saved", name=customer.name, rep=rep.name))
    else:
        ctx.reply(ctx.t("advice.saved_no_rep", name=customer.name))
