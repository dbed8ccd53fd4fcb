"""The hand-made data set of the model's measure (bot/services/customer_report.py), for
tests/services/test_customer_report.py and tests/test_customers_report_cli.py.
Flag period 2026-06-01 … 06-30, window 182 days, grades A > B > C.

Recommended (flag date):
- R1 (rep01) 06-01: grade C, suggested B. Purchases 1000 in 2026-03 (before), 1500 in 2026-08 → bought more.
- R2 (rep01) 06-05: 06-01 grade B suggested B (no flag), 06-05 suggested A. Window [06-05, 12-04) holds the months
  07 … 11 (5), so before = 02 … 06: 200 a month on both sides → no growth; product X trialled 03-01 and again 07-01
  (a repeat) → not converted.
- R3 (rep02) 06-10: grade A suggested A, but a worth_developing alert on 06-10. June's 500 is a month before the
  window (07 … 12); new product Y on 08-01 (and again 08-15: one product) → converted by the trial.
- R4 (r9, m9's team) 06-20: no grade, suggested A (no grade counts as the lowest). 100 in 2026-09 → bought more.
Others (flag date 06-01; window months 2026-06 … 11, before 2025-12 … 2026-05):
- O1 (rep01) grade A suggested A: 1000 before, 900 after → not.
- O2 (rep02) grade B suggested C (worse, no flag): new product Z on 09-01 → converted.
- O3 (rep01) grade B suggested B in June; suggested A on 07-01 and a worth_developing alert on 07-02: after the flag
  period → an other; no activity → not.
- O4 (r9) grade C suggested C, a component_zero alert in June (not a flag); 50 before, 50 after → not.
- O5 (rep01): 2025-11 300 (outside), 2025-12 100 (before), 2026-11 150 (after: its first day is in the window) → yes.
- O6 (rep02): 2025-12 10 (before), 2026-12 1000 (12-01 is past the window's 11-29) → not.
- N1 (rep01): scored only on 05-31 (before the period) → not counted at all.

Recommended 3 of 4 (75 %), others 2 of 6 (33.3 %): 41.7 points.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from storage.db import Database
from storage.models import Customer, CustomerAlert, CustomerPurchase, CustomerScore, CustomerTrial, User

SH = ZoneInfo("Asia/Shanghai")
SINCE = date(2026, 6, 1)
# Every window over: the latest flag (06-20) + 182 days ends 12-18.
LATER = datetime(2027, 1, 15, 10, 0, tzinfo=SH).astimezone(UTC)
# Friday 2026-12-04: R2's, R3's and R4's windows still run.
TODAY = datetime(2026, 12, 4, 10, 0, tzinfo=SH).astimezone(UTC)
T = datetime(2026, 1, 1, tzinfo=UTC)

# name → (grade, rep)
CUSTOMERS = {
    "R1": ("C", "rep01"),
    "R2": ("B", "rep01"),
    "R3": ("A", "rep02"),
    "R4": (None, "r9"),
    "O1": ("A", "rep01"),
    "O2": ("B", "rep02"),
    "O3": ("B", "rep01"),
    "O4": ("C", "r9"),
    "O5": ("B", "rep01"),
    "O6": ("B", "rep02"),
    "N1": ("B", "rep01"),
}
# (customer, night, grade that night, suggested)
SCORES = [
    ("R1", date(2026, 6, 1), "C", "B"),
    ("R1", date(2026, 6, 2), "C", "A"),
    ("R2", date(2026, 6, 1), "B", "B"),
    ("R2", date(2026, 6, 5), "B", "A"),
    ("R3", date(2026, 6, 10), "A", "A"),
    ("R4", date(2026, 6, 20), None, "A"),
    ("O1", date(2026, 6, 1), "A", "A"),
    ("O2", date(2026, 6, 1), "B", "C"),
    ("O3", date(2026, 6, 1), "B", "B"),
    ("O3", date(2026, 7, 1), "B", "A"),
    ("O4", date(2026, 6, 3), "C", "C"),
    ("O5", date(2026, 6, 1), "B", "B"),
    ("O6", date(2026, 6, 30), "B", "B"),
    ("N1", date(2026, 5, 31), "C", "A"),
]
# (customer, kind, night)
ALERTS = [
    ("R3", "worth_developing", date(2026, 6, 10)),
    ("O3", "worth_developing", date(2026, 7, 2)),
    ("O4", "component_zero", date(2026, 6, 3)),
]
# (customer, month, yuan)
PURCHASES = [
    ("R1", date(2026, 3, 1), "1000"),
    ("R1", date(2026, 8, 1), "1500"),
    *[("R2", date(2026, m, 1), "200") for m in range(2, 12)],
    ("R3", date(2026, 6, 1), "500"),
    ("R4", date(2026, 9, 1), "100"),
    ("O1", date(2026, 1, 1), "1000"),
    ("O1", date(2026, 7, 1), "900"),
    ("O4", date(2026, 2, 1), "50"),
    ("O4", date(2026, 10, 1), "50"),
    ("O5", date(2025, 11, 1), "300"),
    ("O5", date(2025, 12, 1), "100"),
    ("O5", date(2026, 11, 1), "150"),
    ("O6", date(2025, 12, 1), "10"),
    ("O6", date(2026, 12, 1), "1000"),
]
# (customer, product, day)
TRIALS = [
    ("R2", "X", date(2026, 3, 1)),
    ("R2", "X", date(2026, 7, 1)),
    ("R3", "Y", date(2026, 8, 1)),
    ("R3", "Y", date(2026, 8, 15)),
    ("O2", "Z", date(2026, 9, 1)),
]


async def seed(db: Database) -> dict[str, int]:
    """The data set above; returns the customers' ids by name."""
    async with db.transaction() as s:
        s.add(User(id="m9", name="周经理", roles=["manager"], manager_id="dir01", created_at=T, updated_at=T))
        s.add(User(id="r9", name="钱多", roles=["rep"], manager_id="m9", created_at=T, updated_at=T))
        rows = {
            name: Customer(name=f"测试医院{name}", aliases=[], grade=grade, rep_id=rep, created_at=T, updated_at=T)
            for name, (grade, rep) in CUSTOMERS.items()
        }
        s.add_all(rows.values())
        await s.flush()
        ids = {name: c.id for name, c in rows.items()}
        for name, night, grade, suggested in SCORES:
            s.add(
                CustomerScore(
                    customer_id=ids[name],
                    night=night,
                    score=50.0,
                    purchases=50.0,
                    trials=50.0,
                    events=50.0,
                    purchases_amount=Decimal(0),
                    trials_count=0,
                    attendees=0,
                    grade=grade,
                    suggested_grade=suggested,
                    computed_at=T,
                )
            )
        for name, kind, night in ALERTS:
            s.add(
                CustomerAlert(
                    customer_id=ids[name],
                    rule=kind,
                    kind=kind,
                    level="info",
                    title="值得发展",
                    period=f"{night.isoformat()}/7",
                    night=night,
                    rep_id=CUSTOMERS[name][1],
                    detail={},
                    created_at=T,
                )
            )
        for name, month, amount in PURCHASES:
            s.add(
                CustomerPurchase(
                    customer_id=ids[name],
                    month=month,
                    amount=Decimal(amount),
                    source="import",
                    created_at=T,
                    updated_at=T,
                )
            )
        for name, product, day in TRIALS:
            s.add(
                CustomerTrial(
                    customer_id=ids[name], product=product, day=day, source="import", created_at=T, updated_at=T
                )
            )
    return ids
