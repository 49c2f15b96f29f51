"""The preview of checkin, cards, referral and flash_sale in a real browser, played through the player API.

A publisher opens each game's preview, plays it with its buttons and sees the player view change as the API
answers: today's calendar cell stamped and a missed day made up (补签) with a chance earned on the task wall,
the drawn card in the album and a card a friend (a second dev player) gives, the opened red packet filled by
friends' assists as the fraud gate admits or holds them and cashed out, a SKU bought, its order reserved and
cancelled. A refusal is shown with its code. Names from the campaign are shown as text, never as HTML.
Screenshots go to docs/screenshots/.
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


def demo(game: Any, index: int = 0, *, running_for: timedelta = timedelta(minutes=5)) -> dict[str, Any]:
    """A game's demo campaign, running since five minutes ago unless told."""
    now = SystemClock().now()
    return game().demo_definitions(iso(now - running_for), iso(now + timedelta(days=3)))[index]


def preview(browser: Any, server: str, users: dict[str, str], campaign_id: int) -> Any:
    page = sign_in(browser, server, users["publisher"])
    errors: list[str] = []

    def noted(message: Any) -> None:
        # A refused play is an HTTP error the page expects (and says): the browser logs it, it is not a fault.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            errors.append(message.text)

    page.on("console", noted)
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


def test_card_sku_and_task_names_are_shown_as_text_not_html(server, browser, users, factory):
    cards = demo(Cards)
    cards["config"]["cards"][0]["name"] = XSS
    cards["config"]["tasks"][0]["title"] = XSS  # the task wall's titles too
    sale = flash_sale_definition(skus=[{"sku": "X", "name": XSS, "price_fen": 0, "stock": 5,
                                        "reward": {"type": "points", "amount": 1, "cost_fen": 1}}])
    for campaign_id, places in [(factory.campaign(cards), ("album", "tasks")), (factory.campaign(sale), ("skus",))]:
        page = preview(browser, server, users, campaign_id)
        for place in places:
            expect(page.locator(f"[data-testid={place}]")).to_contain_text(XSS)
        assert page.evaluate("window.__xss") is None and page.locator(".game-view img").count() == 0


def test_when_the_countdown_reaches_the_start_the_sale_opens_without_a_reload(server, browser, users, factory):
    campaign_id = factory.campaign(flash_sale_definition(starts_in=timedelta(seconds=4)))
    page = preview(browser, server, users, campaign_id)
    countdown = page.locator("[data-testid=countdown]")
    expect(countdown).to_have_text(re.compile(r"^Starts in 00:00:0\d$"))
    expect(countdown).to_have_text(re.compile(r"^Ends in 2\d:\d\d:\d\d$"), timeout=10_000)
    page.locator("[data-testid=skus] li[data-sku=C50] [data-action=buy]").click()
    expect(page.locator("[data-testid=result]")).to_have_text(re.compile(r"^Bought 50 yuan coupon: order O"))
    assert page.console_errors == []


def test_a_missed_day_is_made_up_with_a_chance_earned_on_the_task_wall(server, browser, users, factory):
    # Running for three days, no check-in yet: the three days before today are missed, all within the demo's
    # make-up window (3 days, paid with 1 earned chance, 3 a month).
    campaign_id = factory.campaign(demo(Checkin, running_for=timedelta(days=3)))
    page = preview(browser, server, users, campaign_id)
    view = page.locator(".game-view")
    yesterday = (business_day(SystemClock().now(), "Asia/Shanghai") - timedelta(days=1)).isoformat()
    day = view.locator(f"td[data-date='{yesterday}']")  # this month's calendar, or last month's above it
    rules, chances, result = (page.locator(f"[data-testid={name}]") for name in ("makeup-rules", "chances", "result"))
    expect(rules).to_have_text("A make-up costs 1 chance. 0 of 3 make-ups used this month. "
                               "Click a missed day (dashed) on the calendar to make it up.")
    expect(view.locator("td.missed")).to_have_count(3)
    expect(chances).to_have_text("Chances left: 0 (0 free today, 0 earned)")

    day.locator("button").click()  # no chance to pay with yet: the API refuses, the page says its code
    expect(result).to_have_text(re.compile(r"^Refused: NO_CHANCES: "))
    expect(day).to_have_class(re.compile(r"\bmissed\b"))

    # The task wall: a task with a minimum time refuses an early completion; a task without one pays its chance.
    mall = page.locator("[data-testid=tasks] li[data-task=visit_mall]")
    expect(mall).to_contain_text("Browse the mall for 15 seconds+1 chance")
    mall.locator("[data-action=task_start]").click()
    expect(result).to_have_text("Started: Browse the mall for 15 seconds. The API accepts its completion after 15 s.")
    expect(mall.locator("[data-testid=wait]")).to_have_text(re.compile(r"^Complete after 00:00:1\d$"))
    mall.locator("[data-action=task_complete]").click()
    expect(result).to_have_text(re.compile(r"^Refused: TASK_TOO_SOON: "))
    share = page.locator("[data-testid=tasks] li[data-task=share]")
    share.locator("[data-action=task_start]").click()
    share.locator("[data-action=task_complete]").click()
    expect(result).to_have_text("Task done: Share the check-in page.")
    expect(chances).to_have_text("Chances left: 1 (0 free today, 1 earned)")
    expect(share).to_contain_text("Done today: 1 of 1")

    page.click("[data-testid=checkin]")
    expect(page.locator("[data-testid=streak]")).to_have_text("Days in a row: 1")
    day.locator("button").click()  # the make-up joins yesterday to today's run
    expect(result).to_have_text(f"Made up {yesterday} for 1 chance: days in a row now 2")
    expect(day).to_have_class(re.compile(r"\bchecked\b"))
    expect(day).not_to_have_class(re.compile(r"\bmissed\b"))
    expect(view.locator("td.missed")).to_have_count(2)
    expect(page.locator("[data-testid=streak]")).to_have_text("Days in a row: 2")
    expect(page.locator("[data-testid=next-reward]")).to_contain_text("day 3 of the streak): 10 points")
    expect(chances).to_have_text("Chances left: 0 (0 free today, 0 earned)")
    expect(rules).to_contain_text("1 of 3 make-ups used this month.")
    assert page.console_errors == []
    shot(page, "preview-checkin-tasks")


def test_the_cards_task_wall_pays_draw_chances_and_refuses_an_early_completion(server, browser, users, factory):
    campaign_id = factory.campaign(demo(Cards))
    page = preview(browser, server, users, campaign_id)
    chances, result = page.locator("[data-testid=chances]"), page.locator("[data-testid=result]")
    expect(chances).to_have_text("Chances left: 3 (3 free today, 0 earned)")

    shop = page.locator("[data-testid=tasks] li[data-task=visit_shop]")
    shop.locator("[data-action=task_start]").click()
    shop.locator("[data-action=task_complete]").click()
    expect(result).to_have_text(re.compile(r"^Refused: TASK_TOO_SOON: "))
    expect(chances).to_have_text("Chances left: 3 (3 free today, 0 earned)")

    pay = page.locator("[data-testid=tasks] li[data-task=pay]")
    expect(pay).to_contain_text("+2 chances · 10 points")
    pay.locator("[data-action=task_start]").click()
    pay.locator("[data-action=task_complete]").click()
    expect(result).to_have_text("Task done: Pay with Alipay. You won 10 points.")
    expect(chances).to_have_text("Chances left: 5 (3 free today, 2 earned)")
    pay.locator("[data-action=task_start]").click()  # once a day
    expect(result).to_have_text(re.compile(r"^Refused: TASK_LIMIT_REACHED: "))
    assert page.console_errors == []


def test_a_friend_draws_a_card_the_album_misses_and_gives_it(server, browser, users, factory):
    campaign_id = factory.campaign(demo(Cards))
    page = preview(browser, server, users, campaign_id)
    album = page.locator("[data-testid=album]")
    expect(album.locator("li.missing")).to_have_count(5)

    page.click("[data-testid=friend-gives]")  # the album misses every card: the friend's first draw is one
    result = page.locator("[data-testid=result]")
    expect(result).to_have_text(re.compile(r"^Your friend gave you .+\.$"))
    given = result.inner_text().removeprefix("Your friend gave you ").removesuffix(".")
    log = page.locator("[data-testid=friend-log] li")
    expect(log).to_have_text([f"Your friend drew {given}.", f"Your friend gave you {given}."])
    card = album.locator("li", has_text=given)
    expect(card.locator("[data-testid=count]")).to_have_text("×1")
    expect(card).not_to_have_class("missing")
    expect(album.locator("li.missing")).to_have_count(4)
    expect(page.locator("[data-testid=gifts-left]")).to_have_text("Asks left today: 10; gifts left today: 10")
    assert page.console_errors == []
    shot(page, "preview-cards-friend")


def test_a_friend_accepts_the_ask_for_a_card_and_then_runs_out_of_draws(server, browser, users, factory):
    definition = demo(Cards)
    definition["config"]["cards"][0]["weight"] = 1_000_000  # 爱国福: nearly every draw
    campaign_id = factory.campaign(definition)
    page = preview(browser, server, users, campaign_id)
    result, log = page.locator("[data-testid=result]"), page.locator("[data-testid=friend-log] li")
    aiguo = page.locator("[data-testid=album] li[data-card=aiguo]")
    expect(aiguo).to_have_class("missing")

    page.click("[data-testid=ask]")  # for the first card the album misses
    asked = r"^Asked your friend for 爱国福: request [0-9a-f]{24}-preview-\d+ \(open\)$"  # the ask's id, as answered
    expect(result).to_have_text(re.compile(asked))
    expect(page.locator("[data-testid=gifts-left]")).to_have_text("Asks left today: 9; gifts left today: 10")
    page.click("[data-testid=friend-gives]")
    expect(result).to_have_text("Your friend accepted your ask and gave you 爱国福.")
    expect(log).to_have_text(["Your friend drew 爱国福.", "Your friend accepted your ask and gave you 爱国福."])
    expect(aiguo.locator("[data-testid=count]")).to_have_text("×1")
    expect(aiguo).not_to_have_class("missing")

    # No ask is open: the friend draws for any missing card, and their two draws left are 爱国福 again.
    page.click("[data-testid=friend-gives]")
    expect(result).to_have_text(re.compile(r"^Your friend could not give you the card: NO_CHANCES: "))
    expect(log).to_have_count(3)
    expect(log.nth(2)).to_have_text(re.compile(r"^Your friend could not give you the card: NO_CHANCES"))
    expect(page.locator("[data-testid=album] li.missing")).to_have_count(4)
    assert page.console_errors == []


def test_friends_assist_the_packet_as_the_fraud_gate_answers_and_it_cashes_out(server, browser, users, factory):
    campaign_id = factory.campaign(demo(Referral))  # 5 yuan in 6 assists, under the default fraud policy
    page = preview(browser, server, users, campaign_id)
    page.click("[data-testid=open]")
    label, fill = page.locator("[data-testid=progress-label]"), page.locator("[data-testid=progress-fill]")
    result, log = page.locator("[data-testid=result]"), page.locator("[data-testid=assists] li")
    expect(label).to_have_text("0.00 of 5.00 yuan, 0 of 6 assists")
    expect(page.locator("[data-testid=cashout]")).to_be_hidden()

    # Every friend is a dev player of this browser: the ring rules admit three assists from the tree's IP and
    # hold the others (admitted, their rewards waiting for review). The page says which.
    filled = [0.0]
    for n in range(1, 7):
        page.click("[data-testid=assist]")
        expect(log).to_have_count(n)
        expect(label).to_have_text(re.compile(rf" yuan, {n} of 6 assists$"))
        said = log.nth(n - 1)
        expect(said).to_have_text(re.compile(rf"Friend {n} assisted: \+\d+\.\d\d yuan\."))
        if n <= 3:
            expect(said).not_to_contain_text("HELD")
        else:
            expect(said).to_have_text(re.compile(r"^HELD: the fraud gate admitted this play but holds its rewards"))
        filled.append(width(fill))
        assert filled[-1] > filled[-2]
    expect(label).to_have_text("5.00 of 5.00 yuan, 6 of 6 assists")
    assert filled[-1] == 100
    expect(page.locator("[data-testid=packet-status]")).to_have_text("Target reached: cash it out")

    page.click("[data-testid=assist]")  # a seventh friend: the API refuses, the page says its code
    expect(log.nth(6)).to_have_text(re.compile(r"^Refused: PACKET_FULL: "))
    page.click("[data-testid=cashout]")  # a tree with held assists: its cash-out is held too
    expect(result).to_have_text(re.compile(r"^HELD: .+ Cashed out: Paid out, 500 points$"))
    expect(page.locator("[data-testid=packet-status]")).to_have_text("Paid out")
    expect(page.locator("[data-testid=cashout]")).to_be_hidden()
    assert page.console_errors == []
    fill.evaluate("e => Promise.all(e.getAnimations().map((a) => a.finished))")  # the bar has filled
    shot(page, "preview-referral-assists")


def test_a_reserved_order_shows_its_payment_deadline_and_cancelling_it_puts_the_stock_back(server, browser, users,
                                                                                          factory):
    campaign_id = factory.campaign(demo(FlashSale, 1))  # the tea gift box: 9.90 yuan, 15 minutes to pay
    page = preview(browser, server, users, campaign_id)
    item, result = page.locator("[data-testid=skus] li[data-sku=TEA]"), page.locator("[data-testid=result]")
    stock, orders = item.locator("[data-testid=stock-left]"), page.locator("[data-testid=orders] li")
    expect(stock).to_have_text("100 left")
    expect(page.locator("[data-testid=orders-box]")).to_be_hidden()

    item.locator("[data-action=buy]").click()
    expect(stock).to_have_text("99 left")
    expect(orders).to_have_count(1)
    order = orders.get_attribute("data-order")
    assert re.fullmatch(r"O[0-9a-f]{24}", order)
    expect(orders).to_contain_text(f"Order {order}: Tea gift box, 9.90 yuan")
    expect(orders).to_contain_text(re.compile(r"Pay before \S+"))
    expect(orders.locator("[data-testid=pay-left]")).to_have_text(re.compile(r"^Time left to pay: 00:1[45]:\d\d$"))
    expect(page.locator("[data-testid=orders-box]")).to_contain_text("Paying needs Alipay")

    orders.locator("[data-action=cancel]").click()
    expect(result).to_have_text(f"Order {order}: cancelled")
    expect(stock).to_have_text("100 left")
    expect(page.locator("[data-testid=orders-box]")).to_be_hidden()

    item.locator("[data-action=buy]").click()  # the cancelled order gave the player's limit back too
    expect(orders).to_have_count(1)
    expect(orders).not_to_have_attribute("data-order", order)
    expect(stock).to_have_text("99 left")
    assert page.console_errors == []
    shot(page, "preview-flash-sale-order")
