from datetime import timedelta
from tests.channels.wecom.test_requests import *  # noqa

async def test_probe_overnight(org, bot, fake, clock):
    rep = org.rep
    await rep.send(make_request_line(day=TODAY))
    confirm = rep.last_card()
    org.later(24 * 3600)
    await rep.tap(confirm, "提交")
    print("TEXTS", rep.texts())
    print("STATE", rep.current(confirm))
    print("CARDS", len(rep.cards()), await db_requests(bot))

async def test_probe_two_photos(submitted, bot, fake, clock):
    org = submitted
    card = org.cards["logistics"]
    await org["log01"].tap(card, "认领")
    await send_image(org["log01"], "M1")
    await send_image(org["log01"], "M2")
    print("TEXTS", org["log01"].texts())
    print("CARDS", [c["task_id"] for c in org["log02"].cards()])
    print("STATE", card_text(org.state("logistics", "log02")))
    await org.rep.send("补充 T2 hello")
    print("REP", org.rep.texts())
