"""Rate limits count attempts: a flood of plays the game refuses is refused as a flood, 429 with Retry-After,
before the game's own rules run; retries with the same Idempotency-Key are not attempts; once a process knows
a limit is full it refuses on its own, without a Redis command."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from engine.clock import to_ms
from tests.games.test_lottery import definition as lottery_definition
from tests.web.test_bad_input import error_of

from .test_gate import Player, sale
from .test_risk import Phone, campaign_under


def evalsha_calls(redis) -> int:
    return int(redis.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))


def test_a_flood_of_draws_the_game_refuses_is_rate_limited_by_the_default_policy(factory, client):
    """The issue's case: 300 draws by one player as fast as one client goes, one chance to draw."""
    campaign = factory.campaign(lottery_definition())  # the built-in default policy
    player = Player(client, "flooder")
    answers = [player.play(campaign, "draw", {}) for _ in range(300)]
    codes = [a.json["error"]["code"] if a.status_code != 200 else "OK" for a in answers]
    assert codes[0] == "OK"  # the day's free chance
    assert set(codes[1:20]) == {"NO_CHANCES"}  # the game's own refusal, while the default's 20 per 10 s last
    assert set(codes[20:]) == {"RATE_LIMITED"}  # refused from the 21st on, every one of the rest
    limited = answers[20]
    assert limited.status_code == 429
    assert limited.json["error"]["details"]["reason"] == "user_burst"
    # The window's 10 s, and a little more: a sliding-window counter weighs the 21 attempts of this epoch into
    # the next one's first second (lib/gate.lua gate_window).
    assert 1 <= int(limited.headers["Retry-After"]) <= 11
    assert int(limited.headers["Retry-After"]) == limited.json["error"]["details"]["retry_after_seconds"]


def test_the_attempts_a_flash_sale_refuses_count_too(factory, client, policy):
    name = policy(rate_limits=[{"name": "five", "scope": "user", "limit": 5, "window_seconds": 60}])
    campaign = factory.campaign(sale(name, stock=100, per_user=1))
    player = Player(client, "eager")
    codes = [player.buy(campaign).status_code for _ in range(8)]
    assert codes == [200, 409, 409, 409, 409, 429, 429, 429]  # LIMIT refusals are attempts


def test_retries_with_the_same_key_are_not_attempts(factory, client, policy):
    name = policy(rate_limits=[{"name": "three", "scope": "user", "limit": 3, "window_seconds": 60}])
    campaign = factory.campaign(sale(name, stock=100))
    player = Player(client, "patient")
    first = player.buy(campaign, **{"Idempotency-Key": "the-one-purchase"})
    retries = [player.buy(campaign, **{"Idempotency-Key": "the-one-purchase"}) for _ in range(10)]
    assert first.status_code == 200 and {r.status_code for r in retries} == {200}
    assert all(r.headers["Idempotent-Replayed"] == "true" for r in retries)
    assert [player.buy(campaign).status_code for _ in range(3)] == [200, 200, 429]  # 1 + 2 new attempts


def test_a_refused_request_retried_with_its_key_is_not_counted_again(factory, client, policy):
    name = policy(rate_limits=[{"name": "two", "scope": "user", "limit": 2, "window_seconds": 60}])
    sold = factory.campaign(sale(name, stock=100, per_user=1))
    drawn = factory.campaign(lottery_definition(fraud={"policy": name}))
    for campaign, play, refusal in ((sold, lambda p, **h: p.buy(sold, **h), "LIMIT_REACHED"),
                                    (drawn, lambda p, **h: p.play(drawn, "draw", {}, **h), "NO_CHANCES")):
        player = Player(client, f"retrier-{campaign}")
        assert play(player).status_code == 200  # attempt 1
        for _ in range(5):  # attempt 2, refused by the game, and its retries: not attempts
            error_of(play(player, **{"Idempotency-Key": "the-second"}), 409, refusal)
        error_of(play(player), 429, "RATE_LIMITED")  # attempt 3: over the two


def test_racing_attempts_admit_exactly_the_limit_on_a_stateful_game(factory, client, policy):
    name = policy(rate_limits=[{"name": "four", "scope": "user", "limit": 4, "window_seconds": 60}])
    campaign = factory.campaign(lottery_definition(fraud={"policy": name}))
    player = Player(client, "racer")
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: player.play(campaign, "draw", {}).status_code, range(32)))
    assert codes.count(429) == 28 and codes.count(200) == 1 and codes.count(409) == 3


def test_a_process_that_knows_the_limit_is_full_refuses_without_redis(factory, client, policy, redis):
    name = policy(rate_limits=[{"name": "brief", "scope": "device", "limit": 2, "window_seconds": 1}])
    campaign = factory.campaign(sale(name, stock=100))
    player = Player(client, "hammer")
    answers = [player.buy(campaign) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    before = evalsha_calls(redis)
    for _ in range(50):
        error_of(player.buy(campaign), 429, "RATE_LIMITED")
    assert evalsha_calls(redis) == before  # no claim script, no attempt count: a dict lookup each
    other = Player(client, "neighbour")  # another device: not blocked
    assert other.buy(campaign).status_code == 200
    # The window has room again when Retry-After said: the window's second, and the share of its three
    # attempts a sliding-window counter still counts in the next (lib/gate.lua gate_window).
    wait = int(answers[2].headers["Retry-After"])
    assert 1 <= wait <= 2
    time.sleep(wait)
    assert player.buy(campaign).status_code == 200


def test_a_shadow_limit_counts_attempts_and_refuses_none(factory, client, policy, admin):
    name = policy(rate_limits=[{"name": "watch", "scope": "user", "limit": 2, "window_seconds": 60,
                                "mode": "shadow"}])
    campaign = factory.campaign(lottery_definition(fraud={"policy": name}))
    player = Player(client, "watched")
    codes = [player.play(campaign, "draw", {}).status_code for _ in range(5)]
    assert codes == [200, 409, 409, 409, 409]
    stats = client.get(f"/admin/api/v1/campaigns/{campaign}/fraud", headers=admin).json
    assert stats["shadow"] == {"rate:watch": 3} and stats["blocked"] == {}


def test_a_redis_that_lost_its_scripts_still_counts_a_stateful_play(factory, client, policy, redis):
    """The attempt count rides the state read's pipeline by SHA: after SCRIPT FLUSH (a restart) it loads again."""
    name = policy(rate_limits=[{"name": "three", "scope": "user", "limit": 3, "window_seconds": 60}])
    campaign = factory.campaign(lottery_definition(fraud={"policy": name}))
    player = Player(client, "after-restart")
    assert player.play(campaign, "draw", {}).status_code == 200
    redis.script_flush()
    assert [player.play(campaign, "draw", {}).status_code for _ in range(3)] == [409, 409, 429]


def test_a_window_weighs_the_epoch_before_by_the_share_of_it_still_inside(world, clock):
    """The sliding-window counter, on the test's clock: four attempts at the end of one 10-second epoch still
    count 0.9 of four one second into the next, half of four five seconds in; Retry-After says when."""
    document = {"replay": {"mode": "off"}, "devices": {"mode": "off"}, "risk": {"mode": "off"},
                "referral": {"mode": "off"},
                "rate_limits": [{"name": "four", "scope": "user", "limit": 4, "window_seconds": 10}]}
    campaign = campaign_under(world, document)
    clock.advance((10_000 - to_ms(clock.now()) % 10_000 + 9_000) / 1000)  # 9 s into an epoch
    phone = Phone(world, clock, "steady")
    assert [phone.buy(campaign).status_code for _ in range(4)] == [200] * 4
    clock.advance(2)  # 1 s into the next: 1 + 4 x 0.9 = 4.6 attempts, over four
    limited = error_of(phone.buy(campaign), 429, "RATE_LIMITED")
    assert limited["details"]["retry_after_seconds"] == 4  # 2 + 4 x 0.5 fits 5 s in
    clock.advance(3.9)
    error_of(phone.buy(campaign), 429, "RATE_LIMITED")  # the process's block, until then
    clock.advance(0.1)
    assert phone.buy(campaign).status_code == 200
