"""The ``huodong`` command: migrate, seed, web, worker, settle, admin tokens, and the all-in-one demo."""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from datetime import timedelta

import click
from rq import Worker
from rq.serializers import JSONSerializer
from sqlalchemy.exc import SQLAlchemyError

from alipay_platform.gateway import preload as preload_alipay
from campaigns.migrate import upgrade
from engine import jobs
from engine.clock import to_ms
from engine.config import Settings, environment_for_children, load_settings
from engine.connections import REDIS_ERRORS, embedded_redis_url

from .container import Container

log = logging.getLogger(__name__)

# How far past midnight (UTC) a day's reconciliation waits, so the day's last grants are settled first.
RECONCILE_AFTER = timedelta(days=1, minutes=30)
# Housekeeping of the settlement loop: most of it every second, the search for stalled grants less often.
HOUSEKEEPING_SECONDS = 1.0
STALLED_CHECK_SECONDS = 15.0
STALLED_AFTER = timedelta(minutes=5)


def _settings(ctx: click.Context) -> Settings:
    return ctx.obj


@click.group()
@click.pass_context
def main(ctx: click.Context) -> None:
    """Huodong: marketing campaigns and games for Alipay mini-programs."""
    if ctx.obj is None:  # tests hand in their own Settings
        ctx.obj = load_settings()


@main.command()
@click.pass_context
def migrate(ctx: click.Context) -> None:
    """Bring the database schema up to date."""
    settings = _settings(ctx)
    settings.instance_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.resolved_database_url())
    click.echo("database migrated")


@main.command()
@click.pass_context
def seed(ctx: click.Context) -> None:
    """Create and publish the demo campaigns (skipped when campaigns exist)."""
    from .demo import demo_definitions

    container = Container.build(_settings(ctx))
    with container.session_factory() as session:
        service = container.campaign_service(session)
        if service.list():
            click.echo("campaigns exist; nothing seeded")
            return
        for definition in demo_definitions(container.clock.now()):
            campaign = service.create(definition, actor="seed")
            version = service.publish(campaign.id, actor="seed")
            click.echo(f"campaign {campaign.id} ({campaign.name}) live at version {version.version}")


@main.command()
@click.option("--bind", default="127.0.0.1:8000", show_default=True)
@click.option("--workers", default=3, show_default=True, help="gunicorn worker processes")
@click.pass_context
def web(ctx: click.Context, bind: str, workers: int) -> None:
    """Serve the web app under gunicorn (with the embedded Redis kept up while it runs, if that is in use)."""
    settings = _with_redis(_settings(ctx))
    gunicorn = subprocess.Popen(_gunicorn_argv(bind, workers), env={**os.environ, **_child_env(settings)})
    _supervise([gunicorn])
    ctx.exit(gunicorn.returncode)


@main.command()
@click.option("--name", default=None, help="worker name (default: host and pid)")
@click.option("--burst", is_flag=True, help="stop when the queue is empty")
@click.pass_context
def worker(ctx: click.Context, name: str | None, burst: bool) -> None:
    """Run an RQ worker that issues grants in batches (one queue per worker process).

    RQ's forking Worker, one fork per job, and a job is a batch of grants: a job that leaks or hangs dies with its
    work horse. What every job needs is made here, before the first fork, as RQ's authors recommend for short
    jobs: the job modules and plugins imported, the Alipay keys parsed and its certificates checked; each horse
    inherits them. SQL connections are never inherited: a horse opens its own.
    """
    container = Container.build(_settings(ctx))
    jobs.install(container.adapter_context)
    import alipay_platform.tasks  # noqa: F401  (imported once here, not in every horse)
    import rewards.tasks  # noqa: F401

    preload_alipay(container.settings)
    os.register_at_fork(after_in_child=lambda: container.sql_engine.dispose(close=False))
    # Maintenance takes over the scheduler of a worker that died (else delayed retries wait for RQ's default
    # ten minutes) and fails over the jobs it left; every 30 s here.
    rq_worker = Worker([container.settle_queue], connection=container.rq_redis, serializer=JSONSerializer,
                       name=name, maintenance_interval=container.settings.worker_maintenance_seconds)
    # The scheduler runs retries that have a delay (Retry intervals) when they fall due.
    rq_worker.work(burst=burst, with_scheduler=True, logging_level=container.settings.log_level.upper())


@main.command()
@click.option("--once", is_flag=True, help="one step, then stop")
@click.pass_context
def settle(ctx: click.Context, once: bool) -> None:
    """Run the settlement loop: outbox -> rows -> jobs, expire held orders, end finished campaigns."""
    container = Container.build(_settings(ctx))
    container.scripts.preload()
    run_settlement(container, once=once)


def run_settlement(container: Container, *, once: bool = False) -> None:
    """Settle the outboxes; between steps, housekeeping. Nothing here waits on a provider: closing the trades of
    released orders, refunds and reconciliation are jobs for the workers."""
    settlement = container.settlement()
    stop = _stop_flag()
    housekeeping_at = stalled_at = 0.0
    sampled_minute = None
    while not stop["now"]:
        try:
            settlement.step(block_ms=500)
            if time.monotonic() >= housekeeping_at:
                released = container.hold_sweeper.sweep(container.clock.now())
                if released and container.alipay.configured:
                    container.payments.close_released(released)
                # Yesterday (UTC) is reconciled once it is half an hour behind us.
                settlement.schedule_reconciliation((container.clock.now() - RECONCILE_AFTER).date())
                settlement.recover_abandoned_jobs()
                settlement.release_overdue_retries(timedelta(minutes=1))
                if time.monotonic() >= stalled_at:
                    settlement.requeue_stalled(STALLED_AFTER)
                    stalled_at = time.monotonic() + STALLED_CHECK_SECONDS
                settlement.trim()
                container.live_state.finish_transfers(to_ms(container.clock.now()))
                with container.session_factory() as session:
                    service = container.campaign_service(session)
                    service.end_finished()
                    service.finish_ended()
                    minute = container.clock.now().replace(second=0, microsecond=0)
                    if minute != sampled_minute:  # the burn-down chart's one sample a minute
                        service.sample_live()
                        sampled_minute = minute
                housekeeping_at = time.monotonic() + HOUSEKEEPING_SECONDS
        except (*REDIS_ERRORS, SQLAlchemyError):
            # Redis or the database is away: nothing was acknowledged, so nothing is lost; try again.
            log.exception("settlement step failed; retrying in a second")
            time.sleep(1.0)
        if once:
            break


@main.command()
@click.argument("campaign_id", type=int)
@click.pass_context
def verify(ctx: click.Context, campaign_id: int) -> None:
    """Re-derive every recorded draw of a campaign from its secrets and the claim log; exit 1 on any mismatch."""
    from campaigns.fairness import verify as verify_campaign

    container = Container.build(_settings(ctx))
    with container.read_session_factory() as session:
        report = verify_campaign(session, campaign_id)
    click.echo(f"campaign {campaign_id}: {report.checked} draws re-derived, {report.skipped} plays without draws, "
               f"{len(report.mismatches)} mismatches")
    for mismatch in report.mismatches:
        click.echo(f"MISMATCH {mismatch.claim_id}: {mismatch.reason}")
    if not report.ok:
        ctx.exit(1)


@main.command()
@click.option("--day", default=None, help="UTC day of the grants, YYYY-MM-DD (default: yesterday)")
@click.option("--fix", is_flag=True, help="settle the claims only the journal has, and mark issued the grants "
              "the provider has but the rows do not say")
@click.pass_context
def reconcile(ctx: click.Context, day: str | None, fix: bool) -> None:
    """Check a day: the claim journal against SQL, every grant against its provider. Exit 1 unless all agree.

    Settlement's housekeeping runs this (with --fix) for yesterday every day, as an RQ job.
    """
    from datetime import date as date_type

    from rewards.reconcile import daily_reconciliation

    container = Container.build(_settings(ctx))
    when = date_type.fromisoformat(day) if day else (container.clock.now() - timedelta(days=1)).date()
    report = daily_reconciliation(container.adapter_context, container.settlement(), when, fix=fix)
    click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    if not report["clean"]:
        ctx.exit(1)


@main.group()
def admin() -> None:
    """Admin tokens and users."""


@admin.command("create-token")
@click.option("--role", type=click.Choice(["viewer", "marketer", "publisher", "admin"]), required=True)
@click.option("--name", default="cli", show_default=True)
@click.pass_context
def create_token(ctx: click.Context, role: str, name: str) -> None:
    """Print a new admin API token (shown once; only its hash is kept)."""
    from campaigns.tokens import AdminTokenService

    container = Container.build(ctx.find_root().obj)
    with container.session_factory() as session:
        _token, secret = AdminTokenService(session, clock=container.clock).create(role=role, name=name, actor="cli")
        click.echo(secret)


@admin.command("create-user")
@click.option("--email", required=True)
@click.option("--role", type=click.Choice(["viewer", "marketer", "publisher", "admin"]), required=True)
@click.option("--name", default="")
@click.password_option(envvar="HUODONG_ADMIN_PASSWORD", help="asked for when not given (or HUODONG_ADMIN_PASSWORD)")
@click.pass_context
def create_user(ctx: click.Context, email: str, role: str, name: str, password: str) -> None:
    """Add a person who signs in to the admin page (/admin) with this email and password."""
    from campaigns.users import AdminUserService

    container = Container.build(ctx.find_root().obj)
    with container.session_factory() as session:
        user = AdminUserService(session, clock=container.clock).create(email=email, password=password, role=role,
                                                                       name=name, actor="cli")
        click.echo(f"admin user {user.id}: {user.email} ({user.role})")


@main.command()
@click.option("--port", default=8000, show_default=True)
@click.pass_context
def demo(ctx: click.Context, port: int) -> None:
    """Everything on one machine: embedded Redis, SQLite, migrate, seed, web, worker, settlement."""
    settings = _with_redis(_settings(ctx).replace(dev_login=True))
    settings, sandbox_url = _with_alipay_sandbox(settings, notify_url=f"http://127.0.0.1:{port}/api/v1/notify/alipay")
    env = {**os.environ, **_child_env(settings)}
    huodong = [sys.executable, "-m", "web.cli"]
    subprocess.run([*huodong, "migrate"], env=env, check=True)
    subprocess.run([*huodong, "seed"], env=env, check=True)
    token = subprocess.run([*huodong, "admin", "create-token", "--role", "admin", "--name", "demo"], env=env,
                           check=True, capture_output=True, text=True).stdout.strip()
    password = secrets.token_urlsafe(12)
    email = f"admin-{secrets.token_hex(3)}@huodong.demo"  # a new one each run: no password to remember
    subprocess.run([*huodong, "admin", "create-user", "--email", email, "--role", "admin"], check=True,
                   env={**env, "HUODONG_ADMIN_PASSWORD": password}, capture_output=True)
    children = [
        subprocess.Popen(_gunicorn_argv(f"127.0.0.1:{port}", 3), env=env),
        subprocess.Popen([*huodong, "worker"], env=env),
        subprocess.Popen([*huodong, "settle"], env=env),
    ]
    base = f"http://127.0.0.1:{port}"
    click.echo(DEMO_BANNER.format(base=base, token=token, email=email, password=password, redis=settings.redis_url,
                                  db=settings.resolved_database_url(), sandbox=sandbox_url or "(not used)"))
    if sandbox_url:
        click.echo(ALIPAY_LOGIN.format(base=base, sandbox=sandbox_url))
    _supervise(children)
    click.echo("demo stopped")


DEMO_BANNER = """
Huodong demo is running (Ctrl-C stops everything).

  admin page    {base}/admin/        sign in as {email} / {password}
  API docs      {base}/api/docs      (OpenAPI: {base}/api/v1/openapi.json)
  health        {base}/healthz
  metrics       {base}/metrics
  Redis         {redis}
  database      {db}
  Alipay        {sandbox}
  admin token   {token}

Play the coupon grab (campaign 1), then list the other games:

  TOKEN=$(curl -s -X POST {base}/api/v1/auth/dev -H 'Content-Type: application/json' -H 'X-Device-Id: alice-phone' \\
          -d '{{"user_id": "alice"}}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  curl -s -X POST {base}/api/v1/campaigns/1/actions/buy -H "Authorization: Bearer $TOKEN" \\
       -H 'Content-Type: application/json' -H "Idempotency-Key: $(python3 -c 'import uuid; print(uuid.uuid4())')" \\
       -H 'X-Device-Id: alice-phone' -H "X-Request-Timestamp: $(date +%s)000" \\
       -H "X-Request-Nonce: $(python3 -c 'import uuid; print(uuid.uuid4().hex)')" \\
       -d '{{"sku": "P100", "quantity": 1}}'
  curl -s {base}/api/v1/me/points -H "Authorization: Bearer $TOKEN"
  curl -s {base}/api/v1/campaigns -H "Authorization: Bearer $TOKEN"    # the check-in, wheel, cards, red packet
"""


ALIPAY_LOGIN = """Log in as an Alipay user, through the sandbox gateway and the official SDK:

  CODE=$(curl -s -X POST {sandbox}/sandbox/auth_codes -H 'Content-Type: application/json' \\
         -d '{{"user_id": "2088000000000001"}}' \\
         | python3 -c 'import json,sys; print(json.load(sys.stdin)["auth_code"])')
  curl -s -X POST {base}/api/v1/auth/alipay -H 'Content-Type: application/json' -d "{{\\"auth_code\\": \\"$CODE\\"}}"

With that token, buy the tea box (campaign 2: an order held for payment), pay it, and play the buyer:
POST {base}/api/v1/campaigns/2/actions/pay {{"order_id"}} answers the trade_no, then
POST {sandbox}/sandbox/trades/<order_id>/pay pays it and the sandbox notifies this server.
"""


def _with_alipay_sandbox(settings: Settings, *, notify_url: str) -> tuple[Settings, str | None]:
    """With no Alipay gateway configured, start the sandbox here (fresh keys) and point the settings at it."""
    if settings.alipay_gateway_url:
        return settings, None
    try:
        from alipay_sandbox.server import start_for_merchant  # the source tree's test and demo tool
    except ImportError:
        click.echo("The Alipay sandbox is not here (it lives in the source tree: run `make demo` there); the demo "
                   "runs without Alipay. Set HUODONG_ALIPAY_* to use a real gateway.")
        return settings, None

    running = start_for_merchant()
    return settings.replace(**running.client_settings(), alipay_notify_url=notify_url), running.url


def _with_redis(settings: Settings) -> Settings:
    """Settings with a concrete Redis URL: the configured one, or the embedded server started now."""
    if settings.redis_url:
        return settings
    return settings.replace(redis_url=embedded_redis_url(settings))


def _child_env(settings: Settings) -> dict[str, str]:
    env = environment_for_children(settings)
    metrics_dir = settings.metrics_dir or str(settings.instance_dir.resolve() / "prometheus")
    shutil.rmtree(metrics_dir, ignore_errors=True)
    os.makedirs(metrics_dir, exist_ok=True)
    env["HUODONG_METRICS_DIR"] = metrics_dir
    env["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    env["HUODONG_INSTANCE_PATH"] = str(settings.instance_dir.resolve())
    return env


def _gunicorn_argv(bind: str, workers: int) -> list[str]:
    return [sys.executable, "-m", "gunicorn", "--bind", bind, "--workers", str(workers),
            "--config", "python:web.gunicorn_conf", "web.wsgi:app"]


def _supervise(children: list[subprocess.Popen]) -> None:
    """Wait until Ctrl-C/SIGTERM or until any child exits, then stop them all (SIGTERM, SIGKILL after 15 s)."""
    stop = _stop_flag()
    try:
        while not stop["now"] and all(child.poll() is None for child in children):
            time.sleep(0.5)
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def _stop_flag() -> dict[str, bool]:
    flag = {"now": False}

    def handler(_signum: int, _frame: object) -> None:
        flag["now"] = True

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return flag


if __name__ == "__main__":
    main()
