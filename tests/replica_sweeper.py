"""A bot replica that only sweeps escalations, for tests that kill it: ``python -m tests.replica_sweeper CONFIG NOW``.

CONFIG is a JSON file with the raw configuration (as the TOML would give it), NOW the ISO instant of the injected
clock. The replica runs the real ``Escalator.sweep`` one batch at a time (``max_batches=1``: the same transaction
per batch as a scheduled sweep) and prints ``batch CARDS NOTICES CONFLICTS`` after each committed batch, so that
the test knows how far it got without reading its database; ``done TOTAL`` when nothing is due any more. It never
delivers (no outbox worker): what it commits is left for the surviving replica's outbox.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime
from pathlib import Path

from bot.config import Settings, parse_settings
from bot.infra.clock import FixedClock
from bot.runtime import Runtime


async def run(settings: Settings, now: datetime) -> int:
    rt = Runtime(settings, clock=FixedClock(now))
    total = 0
    try:
        while True:
            stats = await rt.escalator.sweep(max_batches=1)
            if stats.cards == 0 and stats.conflicts == 0:
                break
            total += stats.cards
            print(f"batch {stats.cards} {stats.notices} {stats.conflicts}", flush=True)
        print(f"done {total}", flush=True)
    finally:
        await rt.close()
    return total


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        raise SystemExit("usage: python -m tests.replica_sweeper CONFIG.json NOW_ISO")
    settings = parse_settings(json.loads(Path(argv[0]).read_text()), argv[0])
    asyncio.run(run(settings, datetime.fromisoformat(argv[1])))


if __name__ == "__main__":
    main(sys.argv[1:])
