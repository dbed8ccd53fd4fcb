"""The one rule that decides which channel reaches a person with a notice (docs/architecture.md, "Which channel
reaches a person").

A notice is anything the bot sends a person other than the direct reply to what they just wrote (a reply goes back
on the channel the message came from). The rule:

1. the first enabled channel, in the registry's preference order (``bot.channels.PLUGIN_MODULES``), on which the
   person has an identity (a ``user_identities`` row; the console knows everyone by their user id, and comes last);
2. else none: the notice is still written, to the channel ``UNREACHABLE``, which no plug-in has; a warning is logged
   when the choice is made and the outbox records the row as dead ("channel 'unreachable' is not enabled", counted
   in ``salesbot_outbox_delivered_total{channel="unreachable",result="dead"}``). Never silently dropped.

The channel an event came from plays no part: the same person gets a given notice on the same channel whoever
caused it and whichever channel they used.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.channels.base import Channel
    from storage.models import User

log = logging.getLogger(__name__)

# The channel of a notice that no enabled channel can deliver (no plug-in has this name).
UNREACHABLE = "unreachable"


def reaching(user: User, channels: Mapping[str, Channel], preference: Iterable[str]) -> str | None:
    """The first of ``preference`` that is enabled (in ``channels``) and reaches ``user``, or None."""
    for name in preference:
        channel = channels.get(name)
        if channel is not None and channel.can_reach(user):
            return name
    return None


def channel_for(user: User, channels: Mapping[str, Channel], preference: Iterable[str]) -> str:
    """The channel a notice to ``user`` goes to: ``reaching``, else ``UNREACHABLE`` (logged)."""
    name = reaching(user, channels, preference)
    if name is None:
        log.warning("no enabled channel reaches %s: the notice is recorded as undeliverable", user.id)
        return UNREACHABLE
    return name
