"""A process remembers the set members its admitted plays joined (engine/fraud/members.py): the next plays of
that player on that device make no set check (a member passes anyway), the limit still holds for newcomers,
and the memory lasts MEMORY_MS from the admission that taught it, so a set Redis lost has its members back."""

from __future__ import annotations

from engine.fraud.members import MEMORY_MS
from engine.keys import CampaignKeys

from .test_risk import Phone, campaign_under

POLICY = {"replay": {"mode": "off"}, "rate_limits": [], "risk": {"mode": "off"}, "referral": {"mode": "off"},
          "devices": {"max_users_per_device": 2, "max_devices_per_user": 5, "bind_token_to_device": False}}


def sismembers(redis) -> int:
    return int(redis.info("commandstats").get("cmdstat_sismember", {}).get("calls", 0))


def test_a_known_player_on_a_device_is_not_checked_again_until_the_memory_ends(world, clock):
    campaign = campaign_under(world, POLICY)
    container = world["container"]
    redis = container.redis
    players = CampaignKeys(container.settings.redis_namespace, campaign).fraud("device_users", "shared-phone")
    first = Phone(world, clock, "first", device="shared-phone")
    assert first.buy(campaign).status_code == 200
    assert redis.smembers(players) == {"first"}
    before = sismembers(redis)
    assert [first.buy(campaign).status_code for _ in range(3)] == [200] * 3
    assert sismembers(redis) == before  # remembered: no look at the device's players (nor at the player's devices)

    redis.delete(players)  # Redis lost the set
    assert first.buy(campaign).status_code == 200
    assert not redis.exists(players)  # not written again while remembered
    for name in ("second", "third"):  # the limit holds for newcomers, whom the set counts
        Phone(world, clock, name, device="shared-phone").buy(campaign)
    third = Phone(world, clock, "fourth", device="shared-phone").buy(campaign)
    assert third.status_code == 403 and third.json["error"]["details"]["reason"] == "device:users_per_device"

    clock.advance(MEMORY_MS / 1000)
    assert first.buy(campaign).status_code == 403  # asked again: the set is full of the two newcomers
    assert redis.smembers(players) == {"second", "third"}
