"""SQL models: the system of record for campaigns, versions, players, claims, orders, grants, points and audit."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from .db import Base, JSONDocument, UTCDateTime


class CampaignStatus(enum.StrEnum):
    DRAFT = "draft"
    LIVE = "live"
    PAUSED = "paused"
    ENDED = "ended"


class OrderStatus(enum.StrEnum):
    HELD = "held"
    CONFIRMED = "confirmed"
    PAID = "paid"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REFUNDED = "refunded"  # paid after it was released: the money went back


class GrantStatus(enum.StrEnum):
    PENDING = "pending"
    ISSUED = "issued"
    FAILED = "failed"  # a retry is scheduled
    UNKNOWN = "unknown"  # no answer came: the provider may have it; the next attempt asks before it sends
    DEAD = "dead"  # retries used up: a dead letter waiting for a person
    HELD = "held"  # the fraud gate held its play: it waits in the review queue, never issued until approved
    REJECTED = "rejected"  # a reviewer rejected its play: never issued; its budget and stock went back


class ReviewStatus(enum.StrEnum):
    """A play the fraud gate held (claims.review): waiting for a person, then approved or rejected."""

    HELD = "held"
    APPROVED = "approved"
    REJECTED = "rejected"


class AdminRole(enum.StrEnum):
    """Each role can do what the ones before it can: read; edit drafts and simulate; publish, pause, resume
    and end; manage users and tokens."""

    VIEWER = "viewer"
    MARKETER = "marketer"
    PUBLISHER = "publisher"
    ADMIN = "admin"


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    game: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16), default=CampaignStatus.DRAFT)
    draft: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    live_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CampaignVersion(Base):
    """A published definition. Rows are only ever inserted."""

    __tablename__ = "campaign_versions"
    __table_args__ = (UniqueConstraint("campaign_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    version: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    content_hash: Mapped[str] = mapped_column(String(64))
    published_by: Mapped[str] = mapped_column(String(100))
    published_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Seeds every draw of this version; only its sha256 ``commitment`` is shown until the campaign ends.
    secret: Mapped[str | None] = mapped_column(String(64), nullable=True)
    commitment: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Player(Base):
    __tablename__ = "players"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    alipay_user_id: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Imported attributes audience rules read (the hot path reads their Redis copy).
    attributes: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument, nullable=True)


class AttributeDefinition(Base):
    """An imported player attribute and its type: audience rules may name it."""

    __tablename__ = "attribute_definitions"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    type: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ClaimRecord(Base):
    """One admitted play, as the outbox delivered it."""

    __tablename__ = "claims"
    __table_args__ = (Index("ix_claims_campaign_user", "campaign_id", "user_id"),
                      Index("ix_claims_review", "review", "campaign_id"))

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    version: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[str] = mapped_column(String(64))
    game: Mapped[str] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(40))
    request: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    outcome: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    variant: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # A stateful play's sequence number, business day and the state its plan read: re-derivable with the secret.
    draw: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument, nullable=True)
    # What the fraud gate noted on an admitted play: "shadow" (rules a shadow-mode rule would have refused),
    # "risk" ({score, reasons}), "held" (the ring signals that held it), "ring" (the referral tree it is
    # part of: role, tree, owner, device, ip), "takes" (the stock a held play took), "review" (the decision).
    fraud: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument, nullable=True)
    # held while a held play waits in the review queue, then approved or rejected (ReviewStatus); else None.
    review: Mapped[str | None] = mapped_column(String(16), nullable=True)


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (Index("ix_orders_user", "user_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    claim_id: Mapped[str] = mapped_column(String(40), unique=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    version: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSONDocument)
    deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Grant(Base):
    """A reward won: written once from the outbox, issued once through its adapter."""

    __tablename__ = "grants"
    __table_args__ = (
        Index("ix_grants_user", "user_id", "created_at"),
        Index("ix_grants_status", "status"),
        Index("ix_grants_batch", "batch_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    claim_id: Mapped[str] = mapped_column(String(40))
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    version: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[str] = mapped_column(String(64))
    reward_type: Mapped[str] = mapped_column(String(40))
    reward: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    cost_fen: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default=GrantStatus.PENDING)
    external_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The batch (its RQ job has this id) that issues the grant; a grant moves to a new batch when its old one
    # can no longer run, and a batch issues only the grants that still name it.
    batch_id: Mapped[str | None] = mapped_column(String(40), nullable=True)


class PointsEntry(Base):
    """The points ledger: append-only; a balance is a sum. A grant adds at most one entry."""

    __tablename__ = "points_ledger"
    __table_args__ = (Index("ix_points_user", "user_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64))
    delta: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(200))
    grant_id: Mapped[str | None] = mapped_column(String(40), unique=True, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=func.now())
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(60))
    subject_type: Mapped[str] = mapped_column(String(40))
    subject_id: Mapped[str] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSONDocument)


class FraudPolicy(Base):
    """A named fraud policy (engine/fraud/policy.py), as the admin API saved it; mirrored to Redis."""

    __tablename__ = "fraud_policies"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    updated_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AdminToken(Base):
    """An admin API token: only its SHA-256 is kept."""

    __tablename__ = "admin_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AdminUser(Base):
    """A person who signs in to the admin page: email and a scrypt password hash (werkzeug)."""

    __tablename__ = "admin_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    # Failed sign-ins in a row; at the limit the account is locked until locked_until.
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class CouponCode(Base):
    """One code of an uploaded pool; handed to exactly one grant (``grant_id``), never reused."""

    __tablename__ = "coupon_codes"
    __table_args__ = (UniqueConstraint("pool", "code"), Index("ix_coupon_codes_free", "pool", "grant_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pool: Mapped[str] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(String(128))
    grant_id: Mapped[str | None] = mapped_column(String(40), unique=True, nullable=True)
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class TierGrant(Base):
    """A membership tier a reward gave a player, until ``expires_at`` (one per grant)."""

    __tablename__ = "tier_grants"
    __table_args__ = (Index("ix_tier_grants_user", "user_id", "expires_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grant_id: Mapped[str] = mapped_column(String(40), unique=True)
    user_id: Mapped[str] = mapped_column(String(64))
    tier: Mapped[str] = mapped_column(String(32))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
