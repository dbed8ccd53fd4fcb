"""The audit chain's daily anchor (``audit-anchor`` at ``[audit] anchor_time``; docs/audit.md).

An anchor is the chain's head (seq, hash, row count, time) written outside the database, to every place of
``[audit] anchors``: ``file:/path`` appends one JSON line, ``log`` writes an INFO line. ``salesbot audit verify
--anchors FILE`` then detects a truncated or rewritten tail. ``job_runs`` runs each day once across replicas.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from bot.jobs import Period
from storage.db import Database
from storage.models import AuditChainHead, AuditLog

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.runtime import Runtime

ANCHOR = "audit-anchor"
log = logging.getLogger("salesbot.audit")


def _cron(hhmm: str) -> str:
    hour, minute = hhmm.split(":")
    return f"{int(minute)} {int(hour)} * * *"


async def head(db: Database, now: datetime) -> dict[str, Any]:
    """The anchor of the chain as it stands: {seq, hash, count, at}."""
    async with db.read() as s:
        row = await s.get(AuditChainHead, 1)
        count = int(await s.scalar(select(func.count()).select_from(AuditLog)) or 0)
    return {"seq": row.seq if row else 0, "hash": row.hash if row else None, "count": count, "at": now.isoformat()}


def write(anchor: dict[str, Any], places: list[str]) -> list[str]:
    """Write the anchor to each place; returns the places written."""
    line = json.dumps(anchor, ensure_ascii=False, sort_keys=True)
    done = []
    for place in places:
        if place == "log":
            log.info("audit anchor %s", line)
        elif place.startswith("file:"):
            path = Path(place.removeprefix("file:"))
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as out:
                out.write(line + "\n")
        else:
            continue
        done.append(place)
    return done


async def anchor_now(
    db: Database, settings: Settings, now: datetime, places: list[str] | None = None
) -> dict[str, Any]:
    anchor = await head(db, now)
    write(anchor, settings.audit.anchors if places is None else places)
    return anchor


def register(rt: Runtime) -> None:
    cfg = rt.settings.audit
    if not cfg.anchors:
        return

    async def daily(period: Period) -> None:
        await anchor_now(rt.db, rt.settings, rt.clock.now())

    rt.jobs.register_periodic(ANCHOR, _cron(cfg.anchor_time), daily, catch_up=timedelta(hours=12))
