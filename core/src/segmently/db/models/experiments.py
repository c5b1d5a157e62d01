"""Experiments with their variants, feature flags, and per-site settings."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from segmently.db.base import Base, IdColumn, new_id, utcnow


class Experiment(Base):
    """An A/B or multivariate test on one site.

    The tabs of the wizard that nobody queries by (audience, goals, funnels, advanced,
    integrations, MVT sections) are kept as JSON documents validated by msgspec; what
    the server filters or joins on has its own column.
    """

    __tablename__ = "experiments"
    __table_args__ = (
        UniqueConstraint("site_id", "slug", name="uq_experiments_site_slug"),
        Index("ix_experiments_site_status", "site_id", "status"),
    )

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(
        IdColumn, ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    site_id: Mapped[str] = mapped_column(IdColumn, ForeignKey("sites.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    hypothesis: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(8), default="ab")  # ab | mvt
    status: Mapped[str] = mapped_column(String(16), default="draft")  # draft | live | paused | archived
    hash_seed: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(default=1)
    activation_delay_ms: Mapped[int] = mapped_column(default=100)
    traffic_percentage: Mapped[float] = mapped_column(default=100.0)
    targeting: Mapped[dict[str, Any]]
    audience: Mapped[dict[str, Any]]
    goals: Mapped[dict[str, Any]]  # {"goals": [...], "funnels": [...]}
    advanced: Mapped[dict[str, Any]]
    integrations: Mapped[dict[str, Any]]
    sections: Mapped[dict[str, Any]]  # MVT: {"sections": [...]}
    start_at: Mapped[dt.datetime | None]
    end_at: Mapped[dt.datetime | None]
    activated_at: Mapped[dt.datetime | None]
    winner_alert_sent: Mapped[bool] = mapped_column(default=False)
    sequential_tuning: Mapped[float] = mapped_column(default=5000.0)  # fixed at launch (ARCHITECTURE.md §5)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Variant(Base):
    """One arm of an experiment (for MVT, one cell); events name it by id."""

    __tablename__ = "variants"
    __table_args__ = (UniqueConstraint("experiment_id", "key", name="uq_variants_experiment_key"),)

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    experiment_id: Mapped[str] = mapped_column(IdColumn, ForeignKey("experiments.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    weight: Mapped[float]
    position: Mapped[int]
    changes: Mapped[dict[str, Any]]  # {"changes": [...]}, in the order they apply
    sequential_p_min: Mapped[float | None]  # running minimum of the always-valid p-value vs control


class ExperimentVisitor(Base):
    """One visitor's assignment in one experiment: sticky, written once (the first assignment wins)."""

    __tablename__ = "experiment_visitors"
    __table_args__ = (
        UniqueConstraint("experiment_id", "visitor_id", name="uq_experiment_visitors_experiment_visitor"),
        Index("ix_experiment_visitors_experiment_variant", "experiment_id", "variant_id"),
        Index("ix_experiment_visitors_site_id_visitor_id", "site_id", "visitor_id"),
    )

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    experiment_id: Mapped[str] = mapped_column(IdColumn, ForeignKey("experiments.id", ondelete="CASCADE"))
    variant_id: Mapped[str] = mapped_column(IdColumn, ForeignKey("variants.id", ondelete="CASCADE"))
    site_id: Mapped[str] = mapped_column(IdColumn, ForeignKey("sites.id", ondelete="CASCADE"))
    visitor_id: Mapped[str] = mapped_column(String(200))
    assigned_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # engagement after assignment: time on page of non-bounce page views, and whether it bounced
    time_on_page_s: Mapped[float] = mapped_column(default=0.0)
    time_on_page_n: Mapped[int] = mapped_column(default=0)
    bounced: Mapped[bool] = mapped_column(default=False)


class Flag(Base):
    """A feature flag of a site: on for ``rollout_percentage`` of visitors while active."""

    __tablename__ = "flags"
    __table_args__ = (UniqueConstraint("site_id", "key", name="uq_flags_site_key"),)

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(
        IdColumn, ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    site_id: Mapped[str] = mapped_column(IdColumn, ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="inactive")  # active | inactive | archived
    rollout_percentage: Mapped[float] = mapped_column(default=0.0)
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SiteSettings(Base):
    """Per-site settings: plugins switched on, cross-domain list, conversion rules, defaults."""

    __tablename__ = "site_settings"

    site_id: Mapped[str] = mapped_column(
        IdColumn, ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True
    )
    settings: Mapped[dict[str, Any]]
    version: Mapped[int] = mapped_column(default=1)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class IdempotentRequest(Base):
    """The first answer to a create with an ``Idempotency-Key``, replayed for repeats."""

    __tablename__ = "idempotent_requests"
    __table_args__ = (UniqueConstraint("organization_id", "key", name="uq_idempotent_requests_org_key"),)

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(IdColumn, ForeignKey("organizations.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    fingerprint: Mapped[str] = mapped_column(
        String(64)
    )  # method, path and body: a reused key with other input is refused
    status_code: Mapped[int]
    response: Mapped[dict[str, Any]]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
