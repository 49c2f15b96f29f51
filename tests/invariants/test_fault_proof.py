"""The fault-injection proof: thousands of grants through every adapter while everything that can fail does.

Players buy through the HTTP API (retrying on 503 with the same Idempotency-Key, as a mini-program does)
while, at the same time:

- the Alipay sandbox and the merchant's webhook receiver time out on 10 % of calls (half of those after the
  money moved or the reward was paid) and answer 5xx on 5 %;
- real RQ workers (``huodong worker``) are SIGKILLed at random, with their work horse, or only the horse, also
  in the middle of a batch (the provider called for its grants, the rows not yet marked);
- the settlement process (``huodong settle``) is SIGKILLed at random, also while it holds read entries;
- the Redis server, a redis-server this test owns with ``appendfsync always``, is SIGKILLed and restarted.

Then the faults stop, housekeeping runs (abandoned jobs, stalled grants) and the counts are taken at the
providers (sandbox ledger, webhook receiver) and in SQL: every claim acknowledged to a player has its
rows, every grant is issued exactly once or a dead letter with a reason, and points balances are the sum
of their ledger.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rq.registry import StartedJobRegistry
from sqlalchemy import func, select

from alipay_sandbox.server import start_for_merchant
from campaigns.models import ClaimRecord, CouponCode, Grant, GrantStatus, PointsEntry, TierGrant
from campaigns.players import find_or_create_alipay
from engine.clock import FrozenClock
from rewards import coupons
from rewards.points import balance
from rewards.reconcile import reconcile
from rewards.settlement import UNSETTLED

from ..support.chaos import OwnRedis, PlayLog, Supervisor, chaos_loop, huodong, own_server, play_until_answered
from ..support.client import mini_program_app
from ..support.factories import Factory, flash_sale_definition
from ..support.services import child_env
from ..support.webhook_receiver import SECRET, Receiver, serving

pytestmark = [pytest.mark.slow, own_server]

PLAYERS = 340  # x 6 reward types = 2,040 grants
FAULT_RATES = {"timeout_before": 0.05, "timeout_after": 0.05, "http_500": 0.05}
ALIPAY_METHODS = ("alipay.marketing.activity.voucher.send", "alipay.fund.trans.uni.transfer",
                  "alipay.fund.trans.common.query")
WORKERS = 4
SEED = 20261125
CHAOS_SECONDS = 240
PLAY_PAUSE = 0.07  # seconds each of the four players waits between plays: about a minute of plays in all


def _skus(activity_id: str, webhook_url: str) -> list[dict]:
    rewards = {
        "PTS": {"type": "points", "amount": 30, "cost_fen": 3},
        "CPN": {"type": "coupon_code", "pool": "proof", "title": "Coffee", "cost_fen": 300},
        "VIP": {"type": "tier", "tier": "gold", "days": 30, "cost_fen": 0},
        "HOOK": {"type": "webhook", "url": webhook_url, "data": {"sku": "mug"}, "cost_fen": 500},
        "VCH": {"type": "alipay_voucher", "activity_id": activity_id, "amount_fen": 2000, "cost_fen": 2000},
        "CASH": {"type": "alipay_cash", "amount_fen": 88, "order_title": "活动红包", "cost_fen": 88},
    }
    return [{"sku": sku, "name": sku, "price_fen": 0, "stock": PLAYERS, "per_user_limit": 1, "reward": reward}
            for sku, reward in rewards.items()]


@pytest.fixture
def own_redis(tmp_path: Path):
    server = OwnRedis(tmp_path / "redis", appendfsync="always")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def sandbox():
    # A timeout answers after 0.8 s, past the workers' 0.5 s socket timeout. Every answer takes 0.1 s, as
    # Alipay's do over a real network: a batch has calls in flight, reached and not answered, for that long.
    running = start_for_merchant(late_seconds=0.8, latency_seconds=0.1)
    yield running
    running.stop()


@pytest.mark.timeout(600)
def test_every_acknowledged_grant_is_issued_exactly_once_through_kills_timeouts_and_a_redis_crash(
        settings, tmp_path, own_redis, sandbox, db_session):
    receiver = Receiver(rates=FAULT_RATES, late_seconds=0.8, seed=SEED)
    with serving(receiver) as webhook_url:
        chaos = settings.replace(
            **sandbox.client_settings(), alipay_timeout_seconds=0.5, **own_redis.settings,
            redis_namespace=f"{settings.redis_namespace}p", instance_path=str(tmp_path / "instance"),
            job_retry_intervals=("0", "0", "1", "1", "2", "3"), outbox_claim_idle_ms=1500,
            settle_linger_ms=100,  # as in production: entries wait, read and not yet acknowledged, for others
            webhook_secret=SECRET, webhook_timeout_seconds=0.5)
        app = mini_program_app(chaos)
        container = app.extensions["huodong.container"]
        client = app.test_client()
        activity = "proof-activity"
        sandbox.sandbox.state.activities[activity] = PLAYERS * 2
        with container.session_factory() as session:
            coupons.upload(session, "proof", "code\n" + "\n".join(f"P-{i:05d}" for i in range(PLAYERS)),
                           now=container.clock.now())
            a_month_ago = FrozenClock(container.clock.now() - timedelta(days=30))  # established accounts
            players = [find_or_create_alipay(session, f"2088{i:012d}", clock=a_month_ago).id
                       for i in range(PLAYERS)]
        campaign_id = Factory(container, client).campaign(flash_sale_definition(skus=_skus(activity, webhook_url)))
        tokens = {p: client.post("/api/v1/auth/dev", json={"user_id": p}).json["token"] for p in players}

        sandbox.sandbox.set_fault_rates(FAULT_RATES, methods=ALIPAY_METHODS, seed=SEED)
        supervisor = Supervisor(env=child_env(chaos), logs=tmp_path / "logs")
        for i in range(WORKERS):
            supervisor.add(f"worker{i}", huodong("worker"))
        supervisor.add("settlement", huodong("settle"))
        supervisor.start()
        try:
            log, stats = _play_under_chaos(app, container, own_redis, supervisor, campaign_id, tokens,
                                           lambda: _reached_sandbox(sandbox))
            sandbox.sandbox.set_fault_rates({})
            receiver.rates = {}
            drained = _drain(container)
        finally:
            supervisor.stop()
        report = _count(container, db_session, sandbox, receiver, log, stats, supervisor, own_redis, drained)

    print("\n" + json.dumps(report, indent=2, ensure_ascii=False))
    (tmp_path / "fault-proof.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    assert report["grants"]["acknowledged"] >= 2000 and report["chaos"]["refused"] == []
    assert report["grants"]["acknowledged_without_rows"] == 0
    assert report["grants"]["unsettled"] == 0
    assert report["grants"]["dead_without_reason"] == 0
    for name, provider in report["providers"].items():
        assert provider["issued_in_sql"] == provider["at_provider"], name
        assert provider["twice"] == 0 and provider["unknown_at_provider"] == 0, name
    assert report["points"]["balances_off"] == 0
    assert report["reconciliation"]["missing"] == report["reconciliation"]["mismatched"] == 0
    # The faults really happened.
    assert report["chaos"]["redis_kills"] == 2 and report["chaos"]["settlement_kills_mid_batch"] >= 1
    assert report["chaos"]["worker_kills"] >= 3 and report["chaos"]["work_horse_kills"] >= 3
    assert report["chaos"]["batch_kills_mid_batch"] >= 1
    assert report["faults"]["alipay"].get("timeout_after", 0) >= 10
    assert report["faults"]["webhook"].get("timeout_after", 0) >= 5


def _play_under_chaos(app, container, own_redis, supervisor, campaign_id, tokens, sandbox_calls):
    """Every player buys every SKU once (HTTP, four at a time) while the chaos loop kills things; the chaos
    goes on, faults and all, until settlement has issued or dead-lettered every grant (or for at most
    CHAOS_SECONDS)."""
    log = PlayLog()
    plays = [(player, sku) for player in tokens for sku in ("PTS", "CPN", "VIP", "HOOK", "VCH", "CASH")]
    rng = random.Random(SEED)
    rng.shuffle(plays)
    stats = {"redis_kills": 0, "settlement_kills_mid_batch": 0, "batch_kills_mid_batch": 0}

    def play(item: tuple[str, str]) -> None:
        player, sku = item
        play_until_answered(
            lambda headers: app.test_client().post(f"/api/v1/campaigns/{campaign_id}/actions/buy",
                                                   json={"sku": sku, "quantity": 1}, headers=headers),
            {"Authorization": f"Bearer {tokens[player]}"}, log)
        time.sleep(PLAY_PAUSE)  # players arrive over a minute, so settlement works in many small batches

    def kill_worker() -> None:
        supervisor.kill(f"worker{rng.randrange(WORKERS)}")

    def kill_horse() -> None:
        """Kill the first work horse busy with a job within a few seconds: its worker lives on."""
        deadline = time.monotonic() + 3
        while not supervisor.kill(f"worker{rng.randrange(WORKERS)}", horse_only=True) \
                and time.monotonic() < deadline:
            time.sleep(0.005)

    def kill_mid_batch() -> None:
        """Kill the work horse of a running Alipay batch the moment the sandbox has been called for some of its
        grants and the rows do not know yet (or give up after a few seconds)."""
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            victim = _horse_mid_batch(container, sandbox_calls)
            if victim is not None and supervisor.kill_pid_horse(*victim):
                stats["batch_kills_mid_batch"] += 1
                return
            time.sleep(0.005)

    def kill_settlement() -> None:
        """Kill it the moment it holds entries it has read and not acknowledged (or after a few seconds)."""
        deadline = time.monotonic() + 3
        while not (pending := _outbox_pending(container)) and time.monotonic() < deadline:
            time.sleep(0.002)
        if supervisor.kill("settlement", note={"pending": pending}) and pending:
            stats["settlement_kills_mid_batch"] += 1

    def crash_redis() -> None:
        """Once while players play, once while settlement works through the grants."""
        first = stats["redis_kills"] == 0 and len(log.acknowledged) > len(plays) * 0.4
        second = stats["redis_kills"] == 1 and playing.done() and (
            _settled(container) > len(plays) * 0.3 or time.monotonic() - started > stats["plays_seconds"] + 20)
        if first or second:
            own_redis.kill()
            stats["redis_kills"] += 1
            time.sleep(1.0)
            own_redis.start()

    started = time.monotonic()

    def over() -> bool:
        return time.monotonic() - started > CHAOS_SECONDS or (
            playing.done() and stats["redis_kills"] == 2 and _settled(container) >= len(plays))

    def play_all() -> None:
        list(players.map(play, plays))
        stats["plays_seconds"] = round(time.monotonic() - started, 1)

    tries = Counter()

    def due() -> Callable[[], None] | None:
        """While players play, a settlement kill with read entries and a horse kill mid-batch are tried until
        each has landed (three tries each): chance alone may leave them to the quiet end of the run."""
        if playing.done() or len(log.acknowledged) < len(plays) * 0.2:
            return None
        for name, kill in (("settlement_kills_mid_batch", kill_settlement), ("batch_kills_mid_batch", kill_mid_batch)):
            if not stats[name] and tries[name] < 3:
                tries[name] += 1
                return kill
        return None

    with ThreadPoolExecutor(4) as players, ThreadPoolExecutor(1) as background:
        playing = background.submit(play_all)
        chaos_loop(rng, over, [(3, kill_worker), (3, kill_horse), (2, kill_mid_batch), (2, kill_settlement),
                               (3, crash_redis)], pause=(1.5, 3.5), due=due)
        playing.result()
    stats["chaos_seconds"] = round(time.monotonic() - started, 1)
    return log, stats


def _reached_sandbox(sandbox) -> set[str]:
    """The out_biz_no (grant ids) the sandbox has been called for so far."""
    with sandbox.sandbox.state.lock:
        calls = list(sandbox.sandbox.state.calls)
    return {json.loads(c["params"].get("biz_content") or "{}").get("out_biz_no") for c in calls} - {None}


def _horse_mid_batch(container, sandbox_calls) -> tuple[int, dict] | None:
    """The worker pid (its horse runs the batch) of a started Alipay batch with calls at the sandbox and rows
    not yet marked, and what it had reached (some of its grants or all), if there is one."""
    try:
        started = StartedJobRegistry(queue=container.settle_queue).get_job_ids()
        if not started:
            return None
        with container.session_factory() as session:
            batches: dict[str, list[str]] = {}
            for grant_id, batch_id in session.execute(select(Grant.id, Grant.batch_id).where(
                    Grant.batch_id.in_(started), Grant.status.in_(UNSETTLED),
                    Grant.reward_type.in_(("alipay_voucher", "alipay_cash")))):
                batches.setdefault(batch_id, []).append(grant_id)
        reached = sandbox_calls()
        for batch_id, grant_ids in batches.items():
            if reached.intersection(grant_ids):
                job = container.settlement().job(batch_id)
                if job is not None and job.worker_name:
                    pid = container.rq_redis.hget(f"rq:worker:{job.worker_name}", "pid")
                    partial = len(reached.intersection(grant_ids)) < len(grant_ids)
                    return (int(pid), {"unmarked": len(grant_ids), "partial": partial}) if pid else None
    except Exception:  # noqa: BLE001  (Redis or SQL is away right now: nothing to kill this time)
        return None
    return None


def _settled(container) -> int:
    """Grants issued or dead-lettered so far (0 while the database cannot be asked)."""
    with container.session_factory() as session:
        return session.scalar(select(func.count()).select_from(Grant).where(Grant.status.not_in(UNSETTLED)))


def _outbox_pending(container) -> int:
    """Outbox entries settlement has read and not yet acknowledged (0 when Redis cannot be asked)."""
    try:
        settlement = container.settlement()
        group = container.settings.redis_namespace + ":settlement"
        return sum(container.redis.xpending(stream, group)["pending"] for stream in settlement.streams())
    except Exception:  # noqa: BLE001  (Redis is down right now: count nothing)
        return 0


def _drain(container, patience: float = 240.0) -> dict:
    """What housekeeping does over the next minutes, without waiting for them: abandoned jobs go back to the
    queue, grants whose job ended unsettled get a new one; until nothing is left unsettled."""
    settlement = container.settlement()
    started = time.monotonic()
    rounds = requeued = released = 0
    while time.monotonic() - started < patience:
        time.sleep(2)
        rounds += 1
        settlement.recover_abandoned_jobs(as_of=time.time() + 600)
        released += len(settlement.release_overdue_retries(timedelta(0), now=time.time() + 60))
        requeued += len(settlement.requeue_stalled(timedelta(0)))
        with container.session_factory() as session:
            unsettled = session.scalar(select(func.count()).select_from(Grant).where(Grant.status.in_(UNSETTLED)))
        if not unsettled and not _outbox_pending(container) and not _outbox_unread(container):
            break
    with container.session_factory() as session:
        stuck = [{"grant": g.id, "type": g.reward_type, "status": g.status, "attempts": g.attempts,
                  "last_error": (g.last_error or "")[:200], "job": _job_status(container, g.id)}
                 for g in session.scalars(select(Grant).where(Grant.status.in_(UNSETTLED)).limit(20))]
    return {"seconds": round(time.monotonic() - started, 1), "rounds": rounds, "requeued": requeued,
            "released": released, "stuck": stuck}


def _job_status(container, grant_id: str) -> str | None:
    with container.session_factory() as session:
        batch_id = session.scalar(select(Grant.batch_id).where(Grant.id == grant_id))
    job = container.settlement().job(batch_id) if batch_id else None
    return None if job is None else f"{job.get_status()} retries_left={job.retries_left}"


def _outbox_unread(container) -> int:
    group = container.settings.redis_namespace + ":settlement"
    return sum(g["lag"] or 0 for stream in container.settlement().streams()
               for g in container.redis.xinfo_groups(stream) if g["name"] == group)


def _count(container, db_session, sandbox, receiver, log, stats, supervisor, own_redis, drained) -> dict:
    db_session.rollback()
    grants = list(db_session.scalars(select(Grant)))
    by_id = {g.id: g for g in grants}
    claims = set(db_session.scalars(select(ClaimRecord.id)))
    acknowledged = [(claim_id, g["id"]) for claim_id, answer in log.acknowledged.items() for g in answer["grants"]]

    days = {g.created_at.astimezone(UTC).date() for g in grants}
    reconciled = [reconcile(container.adapter_context, day, fix=True) for day in sorted(days)]
    db_session.rollback()
    grants = list(db_session.scalars(select(Grant)))
    issued = {t: {g.id: g for g in grants if g.reward_type == t and g.status == GrantStatus.ISSUED}
              for t in {g.reward_type for g in grants}}

    ledger = sandbox.sandbox.state
    with ledger.lock:
        vouchers = [v.out_biz_no for v in ledger.vouchers.values()]
        transfers = {t.out_biz_no: t.amount_fen for t in ledger.transfers.values() if t.status == "SUCCESS"}
        alipay_faults = dict(ledger.fault_counts)
    points_rows = list(db_session.execute(select(PointsEntry.grant_id, PointsEntry.user_id, PointsEntry.delta)))
    codes = [c for c in db_session.scalars(select(CouponCode.grant_id).where(CouponCode.grant_id.is_not(None)))]
    tiers = list(db_session.scalars(select(TierGrant.grant_id)))
    paid = list(receiver.paid)
    by_user = {g.id: g.user_id for g in grants}

    def provider(kind: str, at_provider: list[str]) -> dict:
        """The provider's records by grant id against the grants SQL says are issued. The providers refuse a
        second record under one id, so "twice" would show as a second record under another id: a grant's
        player holding two of the kind (every player won exactly one of each)."""
        ours = set(issued.get(kind, {}))
        holders = Counter(by_user[g] for g in at_provider if g in by_user)
        return {"issued_in_sql": len(ours), "at_provider": len(set(at_provider) & ours),
                "twice": sum(n - 1 for n in holders.values() if n > 1) + len(at_provider) - len(set(at_provider)),
                "unknown_at_provider": len(set(at_provider) - ours)}

    expected_points: dict[str, int] = {}
    for grant in issued.get("points", {}).values():
        expected_points[grant.user_id] = expected_points.get(grant.user_id, 0) + grant.reward["amount"]
    now = datetime.now(UTC)
    balances_off = [user for user, amount in expected_points.items()
                    if balance(db_session, user, now) != amount
                    or sum(d for _, u, d in points_rows if u == user) != amount]
    return {
        "grants": {
            "acknowledged": len(acknowledged),
            "acknowledged_without_rows": sum(1 for c, g in acknowledged if c not in claims or g not in by_id),
            "in_sql": len(grants),
            "issued": sum(1 for g in grants if g.status == GrantStatus.ISSUED),
            "dead": sum(1 for g in grants if g.status == GrantStatus.DEAD),
            "dead_reasons": sorted({(g.last_error or "")[:80] for g in grants if g.status == GrantStatus.DEAD}),
            "dead_without_reason": sum(1 for g in grants if g.status == GrantStatus.DEAD and not g.last_error),
            "unsettled": sum(1 for g in grants if g.status in UNSETTLED),
            "attempts_max": max(g.attempts for g in grants),
            "retried": sum(1 for g in grants if g.attempts > 1),
        },
        "providers": {
            "alipay_voucher": provider("alipay_voucher", vouchers),
            "alipay_cash": provider("alipay_cash", list(transfers)),
            "webhook": provider("webhook", paid),
            "points": provider("points", [g for g, _, _ in points_rows]),
            "coupon_code": provider("coupon_code", codes),
            "tier": provider("tier", tiers),
        },
        "cash_fen": {"moved": sum(transfers.values()),
                     "issued": sum(g.reward["amount_fen"] for g in issued.get("alipay_cash", {}).values())},
        "points": {"players": len(expected_points), "balances_off": len(balances_off)},
        "reconciliation": {"checked": sum(r.checked for r in reconciled),
                           "unmarked_fixed": sum(r.fixed for r in reconciled),
                           "missing": sum(len(r.missing) for r in reconciled),
                           "mismatched": sum(len(r.mismatched) for r in reconciled),
                           "unreachable": sum(len(r.unreachable) for r in reconciled)},
        "chaos": {"redis_kills": stats["redis_kills"], "redis_restarts": own_redis.kills,
                  "worker_kills": sum(1 for k in supervisor.kills if k["name"].startswith("worker")
                                      and not k["horse_only"]),
                  "work_horse_kills": sum(1 for k in supervisor.kills if k["horse_only"]),
                  "settlement_kills": sum(1 for k in supervisor.kills if k["name"] == "settlement"),
                  "settlement_kills_mid_batch": stats["settlement_kills_mid_batch"],
                  "batch_kills_mid_batch": stats["batch_kills_mid_batch"],
                  "batch_kills_with_grants_not_yet_sent": sum(1 for k in supervisor.kills if k.get("partial")),
                  "process_starts": {c.name: c.starts for c in supervisor.children.values()},
                  "seconds": stats["chaos_seconds"], "plays_seconds": stats["plays_seconds"],
                  "answers_503": log.unavailable, "refused": log.refused},
        "faults": {"alipay": alipay_faults, "webhook": dict(receiver.faults),
                   "webhook_deliveries": len(receiver.deliveries)},
        "drain": drained,
    }
