"""The claim journal holds every admitted claim, once, as the outbox event; nothing else."""

from __future__ import annotations

import json
from datetime import date

import pytest

from engine.clock import to_ms
from engine.errors import LimitReachedError
from engine.journal import journal_dir, journaled_events


def test_every_admitted_claim_is_journaled_once_and_refusals_and_replays_are_not(factory, container, redis):
    started_ms = to_ms(container.clock.now())
    campaign = factory.campaign(stock=5, per_user=1)
    first = factory.play(campaign, "j1", key="k1")
    factory.play(campaign, "j1", key="k1")  # a replay: the same answer, no new claim
    with pytest.raises(LimitReachedError):
        factory.play(campaign, "j1", key="k2")  # over the per-user limit: refused
    factory.play(campaign, "j2")

    day = container.clock.now().date()
    events = list(journaled_events(journal_dir(container.settings), day))
    # The session's other tests journal into the same folder (and may have had a campaign with this id).
    mine = [e for e in events if e["campaign_id"] == campaign and e["at_ms"] >= started_ms]
    assert [e["user_id"] for e in mine] == ["j1", "j2"]
    assert mine[0]["claim_id"] == json.loads(first.answer_json)["outcome"]["claim_id"]
    outbox = [json.loads(fields["e"]) for _, fields in redis.xrange(container.live_state.keys(campaign).outbox)]
    assert mine == outbox  # the very events settlement reads


def test_a_line_cut_short_by_a_crash_is_skipped(tmp_path):
    day = date(2026, 11, 25)
    (tmp_path / "claims-20261125-host-1.jsonl").write_text('{"claim_id": "a"}\n{"claim_id": "b"}\n{"claim_')
    assert [e["claim_id"] for e in journaled_events(tmp_path, day)] == ["a", "b"]


def test_a_journal_in_a_redis_stream_holds_the_same_events_for_any_host_to_read(settings, redis_url, client):
    from web.container import Container

    from ..support.factories import Factory
    from ..support.services import purge_redis

    streamed = Container.build(settings.replace(claim_journal_redis_url=redis_url,
                                                redis_namespace=f"{settings.redis_namespace}j"))
    try:
        factory = Factory(streamed, client)
        campaign = factory.campaign(stock=5)
        answers = [factory.play(campaign, f"s{i}") for i in range(3)]
        day = streamed.clock.now().date()
        events = list(streamed.journal_reader.events(day))
        assert [e["claim_id"] for e in events] == [a.outcome["claim_id"] for a in answers]
        outbox = [json.loads(f["e"]) for _, f in streamed.redis.xrange(streamed.live_state.keys(campaign).outbox)]
        assert events == outbox
        assert streamed.journal_redis.ttl(streamed.play_service.journal.stream(day)) > 7 * 86400 - 60
        in_files = {e["claim_id"] for e in journaled_events(journal_dir(streamed.settings), day)}
        assert not in_files & {e["claim_id"] for e in events}  # nothing went to this host's disk
    finally:
        for server in (streamed.redis, streamed.journal_redis):
            purge_redis(server, streamed.settings.redis_namespace, streamed.settle_queue.name)
