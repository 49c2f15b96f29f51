"""The preview of checkin, cards, referral and flash_sale in a real browser, played through the player API.

A publisher opens each game's preview, plays it once with its button and sees the player view change as the
API answers: today's calendar cell stamped, the drawn card in the album, the opened red packet's progress,
a SKU bought and its stock down by one (or refused before the sale starts, with the countdown running).
Names from the campaign are shown as text, never as HTML. Screenshots go to docs/screenshots/.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from engine.clock import SystemClock, business_day, iso
from games.cards import Cards
from games.checkin import Checkin
from games.flash_sale import FlashSale
from games.referral import Referral
from tests.support.browser import XSS, expect, shot, sign_in
from tests.support.factories import flash_sale_definition


def demo(game: Any, index: int = 0) -> dict[str, Any]:
    """A game's demo campaign, running since five minutes ago."""
    now = SystemClock().now()
    return game().demo_definitions(iso(now - timedelta(minutes=5)), iso(now + timedelta(days=3)))[index]


def preview(browser: Any, server: str, users: dict[str, str], campaign_id: int) -> Any:
    page = sign_in(browser, server, users["publisher"])
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.console_errors = errors  # a CSP violation or a script error shows here
    page.goto(f"{server}/admin/campaigns/{campaign_id}/preview")
    return page


def width(bar: Any) -> float:
    """The percentage of its track a progress bar fills."""
    return float(bar.evaluate("e => e.style.width").rstrip("%"))


def test_checking_in_stamps_today_on_the_calendar_and_starts_the_streak(server, browser, users, factory):
    campaign_id = factory.campaign(demo(Checkin))
    page = preview(browser, server, users, campaign_id)
    today = page.locator("[data-testid=calendar] td.today")
    today.wait_for()
    assert today.get_attribute("data-day") == str(business_day(SystemClock().now(), "Asia/Shanghai").day)
    expect(today).not_to_have_class(re.compile(r"\bchecked\b"))
    expect(page.locator("[data-testid=streak]")).to_have_text("Days in a row: 0")
    expect(page.locator("[data-testid=next-reward]")).to_contain_text("day 1 of the streak): 5 points")

    page.click("[data-testid=checkin]")
    expect(page.locator("[data-testid=result]")).to_have_text("Checked in: day 1 of the streak, you won 5 points")
    expect(today).to_have_class(re.compile(r"\bchecked\b"))
    expect(page.locator("[data-testid=streak]")).to_have_text("Days in a row: 1")
    expect(page.locator("[data-testid=next-reward]")).to_contain_text("day 2 of the streak): 5 points")
    expect(page.locator("[data-testid=checkin]")).to_be_disabled()
    assert page.locator("[data-testid=calendar] td.checked").count() == 1
    assert page.console_errors == []
    shot(page, "preview-checkin")


def test_a_drawn_card_appears_and_is_counted_in_the_album(server, browser, users, factory):
    campaign_id = factory.campaign(demo(Cards))
    page = preview(browser, server, users, campaign_id)
    chances = page.locator("[data-testid=chances]")
    expect(chances).to_have_text("Chances left: 3 (3 free today, 0 earned)")
    assert page.locator("[data-testid=album] li.missing").count() == 5

    page.click("[data-testid=draw]")
    expect(chances).to_have_text("Chances left: 2 (2 free today, 0 earned)")
    drawn = page.locator("[data-testid=drawn]")
    expect(drawn).to_be_visible()
    card = drawn.get_attribute("data-card")
    held = page.locator(f"[data-testid=album] li[data-card={card}]")
    expect(held.locator("[data-testid=count]")).to_have_text("×1")
    expect(held).not_to_have_class("missing")
    assert page.locator("[data-testid=album] li.missing").count() == 4
    expect(page.locator("[data-testid=result]")).to_contain_text(f"You drew: {drawn.inner_text()}")
    assert page.console_errors == []
    drawn.evaluate("e => Promise.all(e.getAnimations().map((a) => a.finished))")  # the card has turned over
    shot(page, "preview-cards")


def test_an_opened_red_packet_shows_its_progress_time_left_and_share_code(server, browser, users, factory):
    campaign_id = factory.campaign(demo(Referral))
    page = preview(browser, server, users, campaign_id)
    expect(page.locator("[data-testid=packet-intro]")).to_be_visible()
    expect(page.locator("[data-testid=packet]")).to_be_hidden()

    page.click("[data-testid=open]")
    expect(page.locator("[data-testid=packet]")).to_be_visible()
    label, fill = page.locator("[data-testid=progress-label]"), page.locator("[data-testid=progress-fill]")
    expect(label).to_have_text("0.00 of 5.00 yuan, 0 of 6 assists")
    assert width(fill) == 0
    expect(page.locator("[data-testid=time-left]")).to_have_text(re.compile(r"^Time left: 23:59:\d\d$"))
    expect(page.locator("[data-testid=open]")).to_be_disabled()  # the packet is running
    code = page.inner_text("[data-testid=share-code]")
    assert re.fullmatch(r"[0-9a-f]{24}", code)

    # A friend assists with the shared code: the owner's bar moves by the amount the API says it added.
    added = factory.play(campaign_id, "friend-1", "assist", {"share_code": code}).outcome["amount_fen"]
    page.reload()
    expect(label).to_have_text(f"{added / 100:.2f} of 5.00 yuan, 1 of 6 assists")
    assert width(fill) == pytest.approx(added / 500 * 100, abs=0.1)
    assert page.console_errors == []
    shot(page, "preview-referral")


@pytest.mark.parametrize(("index", "sku", "stock", "said"), [
    pytest.param(0, "P100", 1000, r"^Bought 100 membership points: order O[0-9a-f]{24} confirmed$", id="free"),
    pytest.param(1, "TEA", 100, r"^Reserved Tea gift box: order O[0-9a-f]{24}, pay 9\.90 yuan before .+$",
                 id="priced"),
])
def test_buying_a_sku_shows_the_order_and_one_less_in_stock(server, browser, users, factory, index, sku, stock,
                                                            said):
    campaign_id = factory.campaign(demo(FlashSale, index))
    page = preview(browser, server, users, campaign_id)
    item = page.locator(f"[data-testid=skus] li[data-sku={sku}]")
    expect(item.locator("[data-testid=stock-left]")).to_have_text(f"{stock} left")
    expect(page.locator("[data-testid=countdown]")).to_have_text(re.compile(r"^Ends in 2 d 23:5\d:\d\d$"))

    item.locator("[data-action=buy]").click()
    expect(page.locator("[data-testid=result]")).to_have_text(re.compile(said))
    expect(item.locator("[data-testid=stock-left]")).to_have_text(f"{stock - 1} left")
    assert page.console_errors == []
    if sku == "TEA":  # the struck-through original price
        assert item.locator(".price s").inner_text() == "¥99.00"
        shot(page, "preview-flash-sale")


def test_before_the_sale_the_countdown_runs_and_a_purchase_is_refused(server, browser, users, factory):
    campaign_id = factory.campaign(flash_sale_definition(starts_in=timedelta(hours=1)))
    page = preview(browser, server, users, campaign_id)
    expect(page.locator("[data-testid=countdown]")).to_have_text(re.compile(r"^Starts in (00:59:\d\d|01:00:00)$"))
    item = page.locator("[data-testid=skus] li[data-sku=C50]")
    item.locator("[data-action=buy]").click()
    expect(page.locator("[data-testid=result]")).to_contain_text("CAMPAIGN_NOT_LIVE")
    expect(item.locator("[data-testid=stock-left]")).to_have_text("10 left")


def test_card_and_sku_names_are_shown_as_text_not_html(server, browser, users, factory):
    cards = demo(Cards)
    cards["config"]["cards"][0]["name"] = XSS
    sale = flash_sale_definition(skus=[{"sku": "X", "name": XSS, "price_fen": 0, "stock": 5,
                                        "reward": {"type": "points", "amount": 1, "cost_fen": 1}}])
    for campaign_id, shown in [(factory.campaign(cards), "[data-testid=album]"),
                               (factory.campaign(sale), "[data-testid=skus]")]:
        page = preview(browser, server, users, campaign_id)
        expect(page.locator(shown)).to_contain_text(XSS)
        assert page.evaluate("window.__xss") is None and page.locator(f"{shown} img").count() == 0


def test_when_the_countdown_reaches_the_start_the_sale_opens_without_a_reload(server, browser, users, factory):
    campaign_id = factory.campaign(flash_sale_definition(starts_in=timedelta(seconds=4)))
    page = preview(browser, server, users, campaign_id)
    countdown = page.locator("[data-testid=countdown]")
    expect(countdown).to_have_text(re.compile(r"^Starts in 00:00:0\d$"))
    expect(countdown).to_have_text(re.compile(r"^Ends in 2\d:\d\d:\d\d$"), timeout=10_000)
    page.locator("[data-testid=skus] li[data-sku=C50] [data-action=buy]").click()
    expect(page.locator("[data-testid=result]")).to_have_text(re.compile(r"^Bought 50 yuan coupon: order O"))
    assert page.console_errors == []
