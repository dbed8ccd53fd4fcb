"""`salesbot demo` only: a year of made-up activity for the demo customers, and their health scores on the last
eight Mondays and tonight, so 客户 浙二 shows a score, a trend and alerts on a fresh laptop (docs/customers.md).

The figures tell the field case's stories: 浙一 strong on everything; 浙二 buying well but no new-product trial for
four months (trials at 0: red); 绍兴和平医院, a private hospital, small purchases but full marks on academic events
(worth developing). Dates are relative to today, so the demo never ages. Rows are inserted only into an empty
activity table: a second ``salesbot demo`` on the same database keeps what the first wrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from bot.config import Settings
from bot.services import scoring
from storage.db import Database
from storage.models import Customer, CustomerEvent, CustomerPurchase, CustomerTrial
from storage.vocab import IMPORTED


@dataclass(frozen=True)
class _Profile:
    rep: str
    monthly: int  # yuan a month
    trial_every_days: int  # 0: none in the last 120 days
    event_attendees: int  # per monthly event


# Keyed by the customer's short name in bot/demo_data/customers.csv (its first alias, or its name).
PROFILES = {
    "浙一": _Profile("rep01", 180_000, 21, 12),
    "浙二": _Profile("rep01", 150_000, 0, 10),
    "邵逸夫": _Profile("rep01", 90_000, 30, 6),
    "省人民": _Profile("rep02", 60_000, 45, 4),
    "杭一": _Profile("rep02", 40_000, 60, 2),
    "和平医院": _Profile("rep02", 8_000, 0, 25),
    "浙江医院": _Profile("rep01", 30_000, 0, 0),
    "省中医院": _Profile("rep02", 20_000, 90, 3),
}
PRODUCTS = ("超声刀X1", "吻合器S3", "脊柱钉棒B2")


def _short(customer: Customer) -> str:
    return (customer.aliases or [customer.name])[0]


def _month_back(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


async def seed(db: Database, settings: Settings, today: date, now: datetime) -> int:
    """Write the demo activity and scores (once per database); returns the activity rows written."""
    rows = 0
    async with db.transaction() as s:
        if await s.scalar(select(func.count()).select_from(CustomerPurchase)):
            return 0
        for customer in (await s.scalars(select(Customer))).all():
            profile = PROFILES.get(_short(customer)) or PROFILES.get(customer.name)
            if profile is None:
                continue
            if customer.rep_id is None:
                customer.rep_id = profile.rep
            stamp = {"source": IMPORTED, "created_at": now, "updated_at": now}
            for back in range(12):
                # A steady amount with a little month-to-month movement; the current month is half done.
                amount = profile.monthly * (1 + 0.05 * ((back * 7) % 5 - 2)) * (0.5 if back == 0 else 1)
                s.add(
                    CustomerPurchase(
                        customer_id=customer.id,
                        month=_month_back(today, back),
                        amount=Decimal(round(amount, 2)),
                        **stamp,
                    )
                )
                if profile.event_attendees:
                    s.add(
                        CustomerEvent(
                            customer_id=customer.id,
                            event=f"学术沙龙第{12 - back}期",
                            day=today - timedelta(days=30 * back + 9),
                            attendees=profile.event_attendees,
                            **stamp,
                        )
                    )
                rows += 2 if profile.event_attendees else 1
            # Trials: every N days over the last year; none at all in the last 120 days when N is 0.
            step = profile.trial_every_days or 0
            days = range(120, 365, 35) if not step else range(3, 365, step)
            for n, back_days in enumerate(days):
                s.add(
                    CustomerTrial(
                        customer_id=customer.id,
                        product=PRODUCTS[n % len(PRODUCTS)],
                        day=today - timedelta(days=back_days),
                        **stamp,
                    )
                )
                rows += 1
    # The last eight Mondays, then tonight: the trend 客户 shows.
    monday = today - timedelta(days=today.weekday())
    nights = sorted({monday - timedelta(weeks=w) for w in range(1, 9)} | {today})
    for night in nights:
        async with db.transaction() as s:
            await scoring.compute_night(s, settings, night, now)
    return rows
