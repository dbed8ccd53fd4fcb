"""`salesbot demo`'s made-up activity (bot/demo_activity.py) tells the stories it promises, through the real score
engine and alert rules: 浙二 without a trial (trials at 0: red), 绍兴和平医院 worth developing, a trend of 9 nights;
a second seed writes nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import func, select

from bot import demo_activity
from bot.services import customer_alerts
from storage.db import Database
from storage.models import Customer, CustomerAlert, CustomerPurchase, CustomerScore, User
from tests.conftest import make_settings

TODAY = date(2026, 12, 4)
NOW = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)


async def test_the_demo_customers_get_a_year_of_activity_and_their_stories(db: Database, db_url: str) -> None:
    settings = make_settings(db_url)
    rows = await demo_activity.seed(db, settings, TODAY, NOW)
    assert rows > 200
    assert await demo_activity.seed(db, settings, TODAY, NOW) == 0  # once per database
    async with db.read() as s:
        assert await s.scalar(select(func.count()).select_from(CustomerPurchase)) == 8 * 12
        by_name = {c.name: c for c in (await s.scalars(select(Customer))).all()}
        # Every demo customer belongs to one of the demo reps now (alerts and 客户 need an owner).
        assert {c.rep_id for c in by_name.values()} == {"rep01", "rep02"}
        nights = (await s.scalars(select(CustomerScore.night).distinct().order_by(CustomerScore.night))).all()
        assert len(nights) == 9 and nights[-1] == TODAY  # eight Mondays and tonight
        tonight = {
            r.customer_id: r for r in (await s.scalars(select(CustomerScore).where(CustomerScore.night == TODAY)))
        }
    zju2 = tonight[by_name["浙江大学医学院附属第二医院"].id]
    assert zju2.trials == 0 and zju2.purchases > 50
    heping = tonight[by_name["绍兴和平医院"].id]
    assert heping.events == 100 and heping.score < 70
    zju1 = tonight[by_name["浙江大学医学院附属第一医院"].id]
    assert zju1.score == max(r.score for r in tonight.values())

    async with db.transaction() as s:
        users = {u.id: u for u in (await s.scalars(select(User))).all()}
        intents = await customer_alerts.evaluate(s, settings, TODAY, NOW, lambda u: "console")
    async with db.read() as s:
        fired = {(a.customer_id, a.rule) for a in (await s.scalars(select(CustomerAlert))).all()}
    assert (zju2.customer_id, "trials_stalled") in fired
    assert (heping.customer_id, "worth_developing") in fired
    told = {uid for i in intents for uid in getattr(i, "user_ids", ())}
    assert {"rep01", "rep02", users["rep01"].manager_id} <= told
