"""Verify the audit chain (``salesbot audit verify``, docs/audit.md): recompute every row's hash in seq order and
report the first break.

Kinds of break, at the seq where the chain first stops being what it was written as:

- ``edited``: a row's content no longer matches its hash (and the next row still links to that hash);
- ``forged``: a row whose hash matches neither its content nor the next link (made up), a row outside the chain
  (no seq), or rows past the head;
- ``deleted``: a gap in seq;
- ``reordered``: a row whose ``prev_hash`` is not the previous row's hash (rows swapped, or inserted with a
  renumbered seq);
- ``truncated``: the head (``audit_chain_head``) or an anchor names a seq beyond the last row, or the row at an
  anchor's seq has another hash than the anchor's (the tail was removed and rewritten).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from storage import audit_chain
from storage.db import Database
from storage.models import AuditChainHead, AuditLog

STREAM_BATCH = 2000
REDACT_ACTION = "audit.redact"  # bot.services.anonymise


@dataclass(frozen=True)
class Anchor:
    seq: int
    hash: str
    count: int | None = None
    at: str | None = None


@dataclass(frozen=True)
class Break:
    seq: int | None
    kind: str
    detail: str = ""
    row_id: int | None = None


@dataclass
class Report:
    rows: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    head_hash: str | None = None
    anchors_checked: int = 0
    redacted: int = 0
    breaks: list[Break] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaks


def read_anchors(paths: Iterable[Path]) -> list[Anchor]:
    """Anchors from JSON-lines files (``salesbot audit anchor`` / the daily job): one object per line."""
    anchors: list[Anchor] = []
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            data = json.loads(line)
            anchors.append(Anchor(int(data["seq"]), str(data["hash"]), data.get("count"), data.get("at")))
    return anchors


async def seq_range(db: Database, start: int | datetime | None, end: int | datetime | None) -> tuple[int, int]:
    """The seq bounds of ``--from`` / ``--to`` (a seq, or an instant: the first row at or after it / the last row
    before it); (1, head) when not given."""
    async with db.read() as s:
        low = 1
        high = int(await s.scalar(select(func.max(AuditLog.seq))) or 0)
        if isinstance(start, int):
            low = start
        elif isinstance(start, datetime):
            low = int(await s.scalar(select(func.min(AuditLog.seq)).where(AuditLog.at >= start)) or high + 1)
        if isinstance(end, int):
            high = end
        elif isinstance(end, datetime):
            high = int(await s.scalar(select(func.max(AuditLog.seq)).where(AuditLog.at < end)) or 0)
    return low, high


async def count_rows(db: Database, low: int, high: int) -> int:
    async with db.read() as s:
        return int(
            await s.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.seq.between(low, high))) or 0
        )


def _hash(row: Any, key: bytes | None) -> str:
    fields = {
        "at": row.at,
        "actor_id": row.actor_id,
        "channel": row.channel,
        "action": row.action,
        "entity": row.entity,
        "entity_id": row.entity_id,
        "changes": row.changes,
    }
    return audit_chain.hash_fields(fields, row.seq, row.prev_hash or "", key)


async def verify(
    db: Database,
    low: int = 1,
    high: int | None = None,
    anchors: Iterable[Anchor] = (),
    key: bytes | None = None,
    progress: Callable[[int], None] | None = None,
) -> Report:
    """Check rows ``low``..``high`` (all when ``high`` is None) and stop at the first break."""
    report = Report()
    by_seq = {anchor.seq: anchor for anchor in anchors}
    columns = (
        AuditLog.id,
        AuditLog.seq,
        AuditLog.at,
        AuditLog.actor_id,
        AuditLog.channel,
        AuditLog.action,
        AuditLog.entity,
        AuditLog.entity_id,
        AuditLog.changes,
        AuditLog.prev_hash,
        AuditLog.row_hash,
    )
    async with db.read() as s:
        head = await s.get(AuditChainHead, 1)
        full_tail = high is None or (head is not None and high >= head.seq)
        unchained = await s.scalar(select(AuditLog.id).where(AuditLog.seq.is_(None)).order_by(AuditLog.id).limit(1))
        if unchained is not None:
            report.breaks.append(Break(None, "forged", "no seq", row_id=unchained))
            return report
        # Rows an (itself chained) ``audit.redact`` row names: their content may differ from their hash.
        redactions: dict[int, tuple[str, str]] = {}
        for changes in await s.scalars(select(AuditLog.changes).where(AuditLog.action == REDACT_ACTION)):
            for item in (changes or {}).get("rows", []):
                redactions[int(item["seq"])] = (str(item["row_hash"]), str(item.get("redacted_hash")))
        expected_prev = audit_chain.GENESIS
        if low > 1:
            before = await s.scalar(select(AuditLog.row_hash).where(AuditLog.seq == low - 1))
            if before is None:
                report.breaks.append(Break(low - 1, "deleted"))
                return report
            expected_prev = before
        query = select(*columns).where(AuditLog.seq >= low).order_by(AuditLog.seq)
        if high is not None:
            query = query.where(AuditLog.seq <= high)
        stream = await s.stream(query.execution_options(yield_per=STREAM_BATCH))
        expected = low
        pending: Any = None  # a row whose content does not match its hash: edited or forged, says the next row
        async for row in stream:
            if pending is not None:
                kind = "edited" if row.prev_hash == pending.row_hash else "forged"
                report.breaks.append(Break(pending.seq, kind, row_id=pending.id))
                await stream.close()
                return report
            if row.seq != expected:
                report.breaks.append(Break(expected, "deleted", f"next row is {row.seq}"))
                await stream.close()
                return report
            if row.prev_hash != expected_prev:
                report.breaks.append(Break(row.seq, "reordered", row_id=row.id))
                await stream.close()
                return report
            recomputed = _hash(row, key)
            if recomputed != row.row_hash:
                if redactions.get(row.seq) != (row.row_hash, recomputed):
                    pending = row
                    continue
                report.redacted += 1
            anchor = by_seq.get(row.seq)
            if anchor is not None:
                report.anchors_checked += 1
                if anchor.hash != row.row_hash:
                    report.breaks.append(Break(row.seq, "truncated", "anchor hash differs", row_id=row.id))
                    await stream.close()
                    return report
            report.rows += 1
            report.first_seq = report.first_seq or row.seq
            report.last_seq = row.seq
            report.head_hash = expected_prev = row.row_hash
            expected += 1
            if progress is not None:
                progress(1)
        if pending is not None:
            at_head = head is not None and head.seq == pending.seq and head.hash == pending.row_hash
            kind = "edited" if at_head or not full_tail else "forged"
            report.breaks.append(Break(pending.seq, kind, row_id=pending.id))
            return report
        last = expected - 1
        if not full_tail:
            return report
        beyond = sorted(anchor.seq for anchor in by_seq.values() if anchor.seq > last)
        if beyond:
            report.breaks.append(Break(last + 1, "truncated", f"anchor names seq {beyond[-1]}"))
        elif head is not None and head.seq > last:
            report.breaks.append(Break(last + 1, "truncated", f"head names seq {head.seq}"))
        elif head is not None and head.seq < last:
            report.breaks.append(Break(head.seq + 1, "forged", f"rows past the head ({head.seq})"))
        elif head is not None and last > 0 and head.hash != report.head_hash:
            report.breaks.append(Break(last, "forged", "head hash differs"))
    return report
