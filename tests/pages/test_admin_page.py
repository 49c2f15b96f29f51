"""The admin page in a real browser (Debian's Chromium driven by Playwright) against the app served over HTTP.

A publisher signs in, creates a lottery with three prizes, sees their probabilities, simulates it, publishes
it, plays it in the preview until a prize is won, sees the play on the live chart, pauses it and finds the
audit entry. Each of the other games is created from the form its schema gives, with A/B variants and a
rollout. A viewer has no publish button and the API refuses them; a state-changing request without the
session's CSRF token is refused; a prize named like an XSS attack is shown as text. Screenshots of the main
pages are written to docs/screenshots/ (README: "The admin page").
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from campaigns.models import AuditEntry, Campaign, Grant
from tests.fraud.test_gate import Player
from tests.fraud.test_review import Friends
from tests.games.test_referral import definition as referral_definition
from tests.support.browser import XSS, expect, shot, sign_in
from tests.support.factories import flash_sale_definition


def test_a_publisher_creates_simulates_publishes_plays_watches_and_pauses_a_lottery(server, browser, users,
                                                                                     container, settle, db_session):
    page = sign_in(browser, server, users["publisher"])
    page.click("[data-testid=new-lottery]")
    prizes = page.locator('[data-path="config.prizes"] > .item')
    prizes.first.wait_for()
    page.fill("[data-field=name]", "Double 12 wheel")
    starts = (container.clock.now() - timedelta(minutes=5)).astimezone(ZoneInfo("Asia/Shanghai"))
    page.fill("[data-field=starts_at]", starts.strftime("%Y-%m-%dT%H:%M"))  # the campaign's zone
    assert prizes.count() == 4
    prizes.nth(3).locator("[data-action=remove-item]").first.click()  # the demo's 'thanks for playing' slot
    expect(prizes).to_have_count(3)
    page.fill('[data-field="config.prizes.2.name"]', XSS)
    page.fill('[data-field="config.miss_weight"]', "10")
    audience_error = page.locator("[data-field=audience] ~ .field-error")
    page.fill("[data-field=audience]", "user.tier in [")  # the whole draft is checked by the server as it is typed
    expect(audience_error).to_contain_text("line 1, column 15")
    expect(page.locator("[data-testid=checked]")).to_have_class(re.compile("error"))
    page.fill("[data-field=audience]", "")
    expect(audience_error).to_be_empty()
    page.fill('[data-field="config.prizes.0.weight"]', "-1")  # a bad weight: its error beside it
    expect(page.locator('[data-field="config.prizes.0.weight"] ~ .field-error')).to_contain_text("greater than")
    page.fill('[data-field="config.prizes.0.weight"]', "5")
    # 5, 50 and 300 of 365: the probabilities the server derives from the weights, beside each prize.
    expect(page.locator("[data-testid=probability]")).to_have_text(["1.37 %", "13.70 %", "82.19 %"])
    expect(page.locator("[data-testid=checked]")).not_to_have_class(re.compile("error"))
    page.click("[data-testid=save]")
    page.wait_for_url(re.compile(r".*/admin/campaigns/\d+$"))
    campaign_id = int(page.url.rsplit("/", 1)[1])

    page.click("[data-testid=simulate]")
    expect(page.locator("[data-testid=message]")).not_to_be_empty()
    assert "error" not in (page.get_attribute("[data-testid=message]", "class") or "")
    # The forecast's charts: every run in a bin of the cost histogram, each stocked prize's stock-out day.
    runs = page.evaluate("Chart.getChart('forecast-chart').data.datasets[0].data.reduce((a, b) => a + b, 0)")
    assert runs == 1000 or runs > 0
    assert page.evaluate("Chart.getChart('stockout-chart').data.labels") == ["P1000", "P100"]
    page.click("[data-testid=publish]")
    page.wait_for_selector("[data-testid=status].live")
    assert "add /name = \"Double 12 wheel\"" in page.dialogs[-1]  # the diff against nothing live yet
    shot(page, "campaign-live")

    page.click("[data-testid=preview-link]")
    page.wait_for_selector("[data-testid=wheel]")
    assert page.evaluate("window.__xss") is None and XSS in page.inner_text("#legend")
    won = ""
    for _ in range(3):  # three free chances a day; each spin wins with 355 in 365
        page.click("[data-testid=spin]")
        expect(page.locator("[data-testid=result]")).to_have_text(re.compile(r"^(?!…$).+"))
        won = page.inner_text("[data-testid=result]")
        if won.startswith("You won"):
            break
    assert won.startswith("You won"), won
    shot(page, "preview-wheel")
    for _ in range(3):  # until the free chances are gone: a refusal, counted by its reason
        page.click("[data-testid=spin]")
        expect(page.locator("[data-testid=result]")).to_have_text(re.compile(r"^(?!…$).+"))
        if "NO_CHANCES" in page.inner_text("[data-testid=result]"):
            break
    assert "NO_CHANCES" in page.inner_text("[data-testid=result]")

    settle(worker=False)  # the play reaches SQL, where the live chart reads it
    container.play_service.refusals.flush()  # as the next refusal after a second would
    with container.session_factory() as session:
        assert container.campaign_service(session).sample_live() >= 1  # as settlement does each minute
    page.goto(f"{server}/admin/campaigns/{campaign_id}")
    page.locator("#live-numbers tr").nth(1).wait_for()
    numbers = dict(r.split("\t") for r in page.inner_text("#live-numbers").splitlines())
    assert int(numbers["Plays"]) >= 1
    # The win is in SQL and no worker ran: won, not yet issued, and how long it has waited.
    assert re.fullmatch(r"[1-9]\d*, the oldest waiting for \d+\.\d s", numbers["Won, not yet issued"]), numbers
    assert page.evaluate("Chart.getChart('live-chart').data.datasets[0].data.reduce((a, b) => a + b, 0)") >= 1
    page.locator("#refusals-chart").wait_for()
    expect(page.locator("#live-numbers")).to_contain_text("Plays")
    assert page.evaluate("Chart.getChart('refusals-chart').data.labels") == ["NO_CHANCES"]
    left = page.evaluate("Chart.getChart('burndown-chart').data.datasets.map((d) => [d.label, d.data.at(-1)])")
    assert ["Stock left prize:P1000", 50] in left or any(label.startswith("Stock left") for label, _ in left), left
    page.fill("[data-testid=rollout]", "50")  # gray release: the live version again, at 50 %
    page.click("[data-testid=set-rollout]")
    expect(page.locator("[data-testid=compare]")).to_be_visible()  # reloaded with two versions to compare
    expect(page.locator("[data-testid=rollout]")).to_have_value("50")
    assert "50 %" in page.dialogs[-1]
    with container.session_factory() as session:
        assert container.campaign_service(session).version(campaign_id, 2).definition["rollout_percent"] == 50
    page.click("[data-testid=simulate]")
    page.locator("#forecast-numbers tr").first.wait_for()
    page.locator("#refusals-chart").wait_for()
    expect(page.locator("#live-numbers")).to_contain_text("Plays")
    shot(page, "campaign-watch")
    page.click("[data-testid=pause]")
    page.wait_for_selector("[data-testid=status].paused")

    page.goto(f"{server}/admin/audit")
    audit_text = page.inner_text("[data-testid=audit]")
    assert "campaign.pause" in audit_text and "user:" in audit_text and users["publisher"] in audit_text
    shot(page, "audit-log")
    page.goto(f"{server}/admin/campaigns/{campaign_id}")
    page.click("[data-testid=campaign-audit]")  # the campaign's own entries: create, update, publish, rollout, pause
    subjects = {row.split("\t")[3] for row in page.inner_text("[data-testid=audit] tbody").splitlines() if "\t" in row}
    assert subjects == {f"campaign {campaign_id}"}, subjects
    assert "campaign.rollout" in page.inner_text("[data-testid=audit]")
    db_session.rollback()
    paused = db_session.scalars(select(AuditEntry).where(AuditEntry.action == "campaign.pause")).one()
    assert paused.actor.endswith(users["publisher"]) and paused.subject_id == str(campaign_id)
    page.goto(f"{server}/admin/")
    assert "Double 12 wheel" in page.inner_text("[data-testid=campaigns]")
    shot(page, "campaign-list")
    # After the screenshots, not before a click: a full-page screenshot can leave the next click off target.
    page.goto(f"{server}/admin/campaigns/{campaign_id}/edit")
    expect(page.locator("[data-testid=probability]")).to_have_text(["1.37 %", "13.70 %", "82.19 %"])
    shot(page, "editor-lottery")
    assert not page.errors


def test_a_viewer_sees_no_publish_button_and_the_api_refuses_them(server, browser, users, factory):
    campaign_id = factory.campaign()
    page = sign_in(browser, server, users["viewer"])
    page.goto(f"{server}/admin/campaigns/{campaign_id}")
    assert page.locator("[data-testid=pause]").count() == 0 and page.locator("[data-testid=publish]").count() == 0
    answer = page.evaluate("""async (id) => {
        const csrf = document.querySelector('meta[name=csrf-token]').content;
        const r = await fetch(`/admin/api/v1/campaigns/${id}/pause`, {method: 'POST', headers: {'X-CSRF-Token': csrf}});
        return [r.status, (await r.json()).error.code];
    }""", campaign_id)
    assert answer == [403, "FORBIDDEN"]


def test_a_state_changing_request_without_the_csrf_token_is_refused(server, browser, users, factory):
    campaign_id = factory.campaign()
    page = sign_in(browser, server, users["publisher"])
    answer = page.evaluate("""async (id) => {
        const r = await fetch(`/admin/api/v1/campaigns/${id}/pause`, {method: 'POST'});
        return [r.status, (await r.json()).error.code];
    }""", campaign_id)
    assert answer == [403, "CSRF_FAILED"]
    forged = page.request.post(f"{server}/admin/logout", form={"csrf_token": "forged"})
    assert forged.status == 403
    page.goto(f"{server}/admin/campaigns/{campaign_id}")
    assert page.locator("[data-testid=status]").inner_text() == "live"


def test_the_page_follows_the_browsers_language(server, browser, users, factory):
    factory.campaign()
    page = sign_in(browser, server, users["viewer"], locale="zh-CN")
    assert page.inner_text("h1") == "活动列表" and page.get_attribute("html", "lang") == "zh-CN"
    shot(page, "campaign-list-zh")
    marketer = sign_in(browser, server, users["publisher"], locale="zh-CN")
    marketer.goto(f"{server}/admin/campaigns/new?game=lottery")
    expect(marketer.locator('[data-path="config.prizes"] legend').first).to_have_text("奖品")
    expect(marketer.locator("[data-testid=checked]")).to_have_text("服务器已校验：没有问题。")
    shot(marketer, "editor-lottery-zh")


def test_a_marketer_approves_a_held_cash_out_in_the_review_queue(server, browser, users, client, factory, settle,
                                                                  db_session, admin_token):
    # Ring rules only: under the default policy the risk score challenges the shared phone before any hold.
    saved = client.put("/admin/api/v1/fraud-policies/rings", json={"risk": {"mode": "off"}},
                       headers={"Authorization": f"Bearer {admin_token('marketer')}"})
    assert saved.status_code == 200
    campaign_id = factory.campaign({**referral_definition(budget_fen=100_000), "fraud": {"policy": "rings"}})
    friends = Friends(client, factory, campaign_id)
    code = friends.flagged_packet()
    assert friends.cashout("owner", code).json["outcome"]["held"] is True
    settle(worker=False)
    page = sign_in(browser, server, users["publisher"])
    page.goto(f"{server}/admin/campaigns/{campaign_id}/review")
    rows = page.locator("[data-testid=review] tr[data-claim]")
    assert rows.count() == 2  # the assist from the owner's phone, and the cash-out of its tree
    assert "ring:tree_flagged" in rows.nth(1).inner_text()
    rows.nth(1).locator("[data-action=graph]").click()
    expect(page.locator("[data-testid=shared]")).to_contain_text("one-phone")
    assert "f0" in page.inner_text("[data-testid=graph-nodes]")
    shot(page, "review-queue")
    held_claim = rows.nth(1).get_attribute("data-claim")
    rows.nth(1).locator("[data-action=approve]").click()
    expect(page.locator("[data-testid=message]")).to_have_text("Approved")
    assert page.locator(f"tr[data-claim='{held_claim}']").count() == 0
    db_session.rollback()
    assert db_session.scalars(select(Grant.status).where(Grant.claim_id == held_claim)).all() == ["pending"]
    page.goto(f"{server}/admin/settlement")
    assert "pending" in page.inner_text("[data-testid=grants]")
    page.goto(f"{server}/admin/fraud")
    assert "ring:tree_flagged" in page.inner_text("[data-testid=fraud-campaigns]")
    shot(page, "fraud")


@pytest.mark.parametrize("game", ["flash_sale", "checkin", "cards", "referral"])
def test_each_game_is_created_from_its_form_with_variants_and_a_rollout(server, browser, users, game, db_session):
    page = sign_in(browser, server, users["publisher"])
    page.click(f"[data-testid=new-{game}]")
    page.locator("[data-field=rollout_percent]").wait_for()
    expect(page.locator("[data-testid=checked]")).not_to_be_empty()
    assert "error" not in (page.get_attribute("[data-testid=checked]", "class") or ""), \
        "the demo definition the form starts from is valid"
    page.fill("[data-field=name]", f"{game} from the form")
    page.fill("[data-field=rollout_percent]", "101")  # out of range: refused beside the field
    expect(page.locator("[data-field=rollout_percent] ~ .field-error")).to_contain_text("rollout_percent")
    page.fill("[data-field=rollout_percent]", "25")
    variants = page.locator('[data-path="variants"]')
    for name in ("A", "B"):
        variants.locator("[data-action=add-item]").last.click()
        index = variants.locator(":scope > .item").count() - 1
        page.fill(f'[data-field="variants.{index}.name"]', name)
        page.fill(f'[data-field="variants.{index}.weight"]', "1")
    if game == "flash_sale":  # variant B overrides one setting of the game's; A keeps them all
        page.check('[data-toggle="variants.1.config.payment_window_seconds"]')
        page.fill('[data-field="variants.1.config.payment_window_seconds"]', "600")
    expect(page.locator("[data-testid=checked]")).not_to_have_class(re.compile("error"))
    page.click("[data-testid=save]")
    page.wait_for_url(re.compile(r".*/admin/campaigns/\d+$"))
    db_session.rollback()
    saved = db_session.get(Campaign, int(page.url.rsplit("/", 1)[1]))
    expected = {"payment_window_seconds": 600} if game == "flash_sale" else {}
    assert [v["config"] for v in saved.draft["variants"]] == [{}, expected]
    assert saved.name == f"{game} from the form" and saved.game == game
    assert saved.draft["rollout_percent"] == 25
    assert [(v["name"], v["weight"]) for v in saved.draft["variants"]] == [("A", 1), ("B", 1)]
    page.goto(f"{page.url}/edit")  # the saved draft back in its form
    expect(page.locator("[data-field=rollout_percent]")).to_have_value("25")
    expect(page.locator("[data-testid=checked]")).not_to_be_empty()
    shot(page, f"editor-{game.replace('_', '-')}")
    assert not page.errors


def test_a_campaign_named_like_an_attack_is_text_on_every_page(server, browser, users, factory, container):
    definition = referral_definition()
    campaign_id = factory.campaign({**definition, "name": XSS})
    page = sign_in(browser, server, users["publisher"])
    for path in ("/admin/", f"/admin/campaigns/{campaign_id}", f"/admin/campaigns/{campaign_id}/edit",
                 f"/admin/campaigns/{campaign_id}/preview", f"/admin/campaigns/{campaign_id}/review", "/admin/fraud",
                 "/admin/audit"):
        page.goto(f"{server}{path}")
        page.wait_for_load_state("networkidle")
        assert page.locator("img[src=x]").count() == 0, path
        assert page.evaluate("window.__xss") is None, path
    page.goto(f"{server}/admin/campaigns/{campaign_id}/edit")
    expect(page.locator("[data-field=name]")).to_have_value(XSS)
    assert json.dumps(XSS) in page.input_value("[data-testid=json]")  # the JSON form shows it as a string
    assert not page.errors


def test_the_ab_variants_are_compared_on_the_campaign_page(server, browser, users, factory, settle):
    definition = flash_sale_definition(stock=100)
    definition["variants"] = [{"name": "A", "weight": 1}, {"name": "B", "weight": 1}]
    campaign_id = factory.campaign(definition)
    got = [factory.play(campaign_id, f"ab-{i}").outcome["variant"] for i in range(12)]
    settle(worker=False)
    page = sign_in(browser, server, users["viewer"])
    page.goto(f"{server}/admin/campaigns/{campaign_id}")
    rows = page.locator("[data-testid=variant-numbers] tbody tr")
    expect(rows).to_have_count(2)
    for row, name in zip(rows.all(), ("A", "B"), strict=True):
        cells = row.locator("td").all_inner_texts()
        assert cells[0] == name and int(cells[2]) == got.count(name), cells  # its plays
    assert not page.errors


def test_a_policy_tried_in_shadow_shows_what_it_would_refuse_and_publishing_warns(server, browser, users, client,
                                                                                  factory, admin_token, container):
    marketer = {"Authorization": f"Bearer {admin_token('marketer')}"}
    saved = client.put("/admin/api/v1/fraud-policies/watching", headers=marketer,
                       json={"risk": {"mode": "off"}, "rate_limits": [
                           {"name": "tight", "scope": "user", "limit": 2, "window_seconds": 60, "mode": "shadow"}]})
    assert saved.status_code == 200, saved.json
    campaign_id = factory.campaign({**flash_sale_definition(stock=100), "fraud": {"policy": "watching"}})
    player = Player(client, "keen")
    assert [player.buy(campaign_id).status_code for _ in range(10)] == [200] * 10  # shadow: nobody refused
    container.play_service.refusals.flush()
    page = sign_in(browser, server, users["publisher"])
    page.goto(f"{server}/admin/campaigns/{campaign_id}")
    hour = page.locator("[data-testid=gate-hour]")
    expect(hour).to_contain_text("rate:tight")
    assert "80.0 %" in hour.inner_text() and "10" in hour.inner_text()  # 8 of the 10 plays
    page.click("[data-testid=publish]")
    page.wait_for_load_state("load")
    assert "would have refused 80.0 % of the plays" in page.dialogs[-1] and "rate:tight: 80.0 %" in page.dialogs[-1]
    assert page.errors == []
