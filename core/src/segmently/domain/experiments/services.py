"""Creating, changing and moving experiments through their lifecycle."""

from __future__ import annotations

import itertools
import re
from typing import Any

import msgspec
from litestar.exceptions import ClientException, NotFoundException
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from segmently import assignment
from segmently.db.base import new_id, utcnow
from segmently.db.models import Experiment, Site, Variant
from segmently.domain.accounts.auth import Actor
from segmently.domain.accounts.services import Conflict
from segmently.domain.experiments import schemas, validation
from segmently.domain.sdk.config import bump, cross_domain_hosts
from segmently.domain.sites.settings import default_activation_delay
from segmently.http.errors import field_error
from segmently.http.idempotency import check_if_match
from segmently.kernel import Kernel
from segmently.outbox import emit
from segmently.tiers.guards import check_limit_for, require_feature_for

# action -> (states it may start from, state it leads to, domain event)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str, str | None]] = {
    "start": (("draft",), "live", "experiment.started"),
    "pause": (("live",), "paused", "experiment.paused"),
    "resume": (("paused",), "live", "experiment.started"),
    "archive": (("draft", "live", "paused"), "archived", "experiment.archived"),
    "reinstate": (("archived",), "draft", None),
}
EDITABLE = ("draft", "paused")


def slugify(name: str) -> str:
    """A URL-safe slug from a name (``Homepage Hero Test`` → ``homepage-hero-test``)."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:90]
    return slug or "experiment"


async def _free_slug(session: AsyncSession, site_id: str, wanted: str, explicit: bool) -> str:
    taken = set(
        (
            await session.scalars(
                select(Experiment.slug).where(
                    Experiment.site_id == site_id, Experiment.slug.startswith(wanted)
                )
            )
        ).all()
    )
    if wanted not in taken:
        return wanted
    if explicit:
        raise Conflict(f"Another experiment of this site already has the slug '{wanted}'")
    return next(f"{wanted}-{n}" for n in itertools.count(2) if f"{wanted}-{n}" not in taken)


async def count_experiments(session: AsyncSession, organization_id: str) -> int:
    """Experiments that count against the plan's limit (archived ones do not)."""
    stmt = (
        select(func.count())
        .select_from(Experiment)
        .where(Experiment.organization_id == organization_id, Experiment.status != "archived")
    )
    return int(await session.scalar(stmt) or 0)


async def check_plan(kernel: Kernel, actor: Actor, cfg: schemas.ExperimentIn) -> None:
    """402 naming the plan for any feature of ``cfg`` the organization's plan lacks."""
    org = actor.organization
    if cfg.type == "mvt":
        await require_feature_for(kernel, org, "experiments.mvt")
    triggers = cfg.audience.triggers
    if cfg.audience.referral_sources or any(
        v is not None for v in (triggers.scroll_percent, triggers.time_seconds, triggers.click_selector)
    ):
        await require_feature_for(kernel, org, "experiments.behavioral_targeting")
    if cfg.audience.attribute_rules:
        await require_feature_for(kernel, org, "experiments.attribute_targeting")
    if cfg.funnels:
        await require_feature_for(kernel, org, "experiments.funnels")
    if cfg.advanced.start_at or cfg.advanced.end_at or cfg.advanced.auto_pause_at_significance:
        await require_feature_for(kernel, org, "experiments.scheduling")


def _with_ids(cfg: schemas.ExperimentIn) -> schemas.ExperimentIn:
    goals = [g if g.id else msgspec.structs.replace(g, id=new_id()) for g in cfg.goals]
    funnels = [f if f.id else msgspec.structs.replace(f, id=new_id()) for f in cfg.funnels]
    return msgspec.structs.replace(cfg, goals=goals, funnels=funnels)


def _apply(experiment: Experiment, cfg: schemas.ExperimentIn) -> None:
    experiment.name = cfg.name.strip()
    experiment.description = cfg.description
    experiment.hypothesis = cfg.hypothesis
    experiment.kind = cfg.type
    if cfg.activation_delay_ms is not msgspec.UNSET:  # create() resolves an unset one first
        experiment.activation_delay_ms = cfg.activation_delay_ms
    experiment.traffic_percentage = cfg.targeting.traffic_percentage
    experiment.targeting = msgspec.to_builtins(cfg.targeting)
    experiment.audience = msgspec.to_builtins(cfg.audience)
    experiment.goals = {"goals": msgspec.to_builtins(cfg.goals), "funnels": msgspec.to_builtins(cfg.funnels)}
    # bare hostnames, as the snippet compares them (a URL was accepted for its host)
    hosts = cross_domain_hosts(cfg.advanced.cross_domain)
    experiment.advanced = msgspec.to_builtins(msgspec.structs.replace(cfg.advanced, cross_domain=hosts))
    experiment.integrations = cfg.integrations
    experiment.sections = {"sections": msgspec.to_builtins(cfg.sections)}
    experiment.start_at = cfg.advanced.start_at
    experiment.end_at = cfg.advanced.end_at


async def _replace_variants(
    session: AsyncSession, experiment: Experiment, variants: list[schemas.VariantIn]
) -> None:
    """Keep the ids of variants whose key stays (events refer to them), add and drop the rest."""
    existing = {
        v.key: v
        for v in (await session.scalars(select(Variant).where(Variant.experiment_id == experiment.id))).all()
    }
    for position, v in enumerate(variants):
        row = existing.pop(v.key, None) or Variant(experiment_id=experiment.id, key=v.key)
        row.name, row.weight, row.position = v.name, v.weight, position
        row.changes = {
            "changes": msgspec.to_builtins(v.changes),
            "custom_css": v.custom_css,
            "custom_js": v.custom_js,
        }
        session.add(row)
    for stale in existing.values():
        await session.delete(stale)


async def create(
    session: AsyncSession, kernel: Kernel, actor: Actor, site: Site, cfg: schemas.ExperimentIn
) -> tuple[Experiment, list[str]]:
    """Validate, gate by plan, and store a new draft experiment; emits ``experiment.created``."""
    warnings = validation.validate(cfg)
    await check_limit_for(
        kernel, actor.organization, "experiments", await count_experiments(session, actor.organization_id)
    )
    await check_plan(kernel, actor, cfg)
    cfg = _with_ids(cfg)
    if cfg.activation_delay_ms is msgspec.UNSET:
        delay = await default_activation_delay(session, site.id)
        cfg = msgspec.structs.replace(cfg, activation_delay_ms=delay)
    experiment_id = new_id()
    slug = await _free_slug(session, site.id, cfg.slug or slugify(cfg.name), explicit=cfg.slug is not None)
    experiment = Experiment(
        id=experiment_id,
        organization_id=actor.organization_id,
        site_id=site.id,
        slug=slug,
        hash_seed=experiment_id,
        status="draft",
    )
    _apply(experiment, cfg)
    session.add(experiment)
    await session.flush()
    await _replace_variants(session, experiment, cfg.variants)
    await session.flush()
    await bump(session, site.id)
    emit(
        session,
        "experiment.created",
        actor.organization_id,
        {"experiment_id": experiment.id, "experiment_name": experiment.name, "project_id": site.id},
    )
    return experiment, warnings


async def get(session: AsyncSession, actor: Actor, experiment_id: str) -> Experiment:
    """The experiment if it belongs to the caller's organization, else 404."""
    experiment = await session.scalar(
        select(Experiment).where(
            Experiment.id == experiment_id, Experiment.organization_id == actor.organization_id
        )
    )
    if experiment is None:
        raise NotFoundException("No such experiment")
    return experiment


async def variants_of(session: AsyncSession, experiment_id: str) -> list[Variant]:
    """The experiment's variants in order (control first)."""
    return list(
        (
            await session.scalars(
                select(Variant).where(Variant.experiment_id == experiment_id).order_by(Variant.position)
            )
        ).all()
    )


def check_version(experiment: Experiment, if_match: str | None) -> None:
    """412 with the current version when ``If-Match`` names an older one."""
    check_if_match(if_match, experiment.version, "This experiment")


def config_of(experiment: Experiment, variants: list[Variant]) -> schemas.ExperimentIn:
    """The stored configuration as the wizard's input shape (for merging a PATCH)."""
    data: dict[str, Any] = {
        "name": experiment.name,
        "slug": experiment.slug,
        "description": experiment.description,
        "hypothesis": experiment.hypothesis,
        "type": experiment.kind,
        "activation_delay_ms": experiment.activation_delay_ms,
        "targeting": experiment.targeting,
        "audience": experiment.audience,
        "goals": experiment.goals.get("goals", []),
        "funnels": experiment.goals.get("funnels", []),
        "advanced": experiment.advanced,
        "sections": experiment.sections.get("sections", []),
        "integrations": experiment.integrations,
        "variants": []
        if experiment.kind == "mvt"
        else [{"key": v.key, "name": v.name, "weight": v.weight, **v.changes} for v in variants],
    }
    return msgspec.convert(data, schemas.ExperimentIn)


async def update(
    session: AsyncSession,
    kernel: Kernel,
    actor: Actor,
    experiment: Experiment,
    patch: schemas.ExperimentPatch,
    if_match: str | None,
) -> list[str]:
    """Apply a partial change to a draft or paused experiment; bumps its version."""
    check_version(experiment, if_match)
    if experiment.status not in EDITABLE:
        raise Conflict(f"A {experiment.status} experiment cannot be edited: pause it first")
    current = config_of(experiment, await variants_of(session, experiment.id))
    changes = {k: v for k, v in msgspec.structs.asdict(patch).items() if v is not msgspec.UNSET}
    if experiment.kind == "mvt" and "variants" in changes:
        raise field_error("variants", "a multivariate test's cells come from its sections")
    cfg = msgspec.structs.replace(current, **changes)
    warnings = validation.validate(cfg)
    await check_plan(kernel, actor, cfg)
    if "slug" in changes and cfg.slug != experiment.slug:
        experiment.slug = await _free_slug(session, experiment.site_id, cfg.slug or "", explicit=True)
    _apply(experiment, _with_ids(cfg))
    if "variants" in changes:
        await _replace_variants(session, experiment, cfg.variants)
    experiment.version += 1
    experiment.updated_at = utcnow()
    await session.flush()
    await bump(session, experiment.site_id)
    return warnings


async def set_traffic(session: AsyncSession, experiment: Experiment, percentage: float) -> None:
    """Change the share of matching visitors in the experiment, in any state but archived.

    Assigned visitors keep their variant (ranges grow from their start; stored assignments win).
    """
    if experiment.status == "archived":
        raise Conflict("An archived experiment cannot be changed: reinstate it first")
    experiment.traffic_percentage = percentage
    experiment.targeting = {**experiment.targeting, "traffic_percentage": percentage}
    experiment.version += 1
    experiment.updated_at = utcnow()
    await session.flush()
    await bump(session, experiment.site_id)


def mvt_cells(sections: list[schemas.MvtSection]) -> list[schemas.VariantIn]:
    """One variant per combination of section variations, with the engine's equal weights.

    ``mvt-cell-1`` combines every section's first variation: it is the control cell.
    """
    cells = assignment.mvt_cells([[v.key for v in s.variations] for s in sections])
    combos = itertools.product(*[s.variations for s in sections])
    return [
        schemas.VariantIn(
            key=cell.key,
            name=" × ".join(v.name for v in combo),
            weight=cell.weight,
            changes=[c for v in combo for c in v.changes],
        )
        for cell, combo in zip(cells, combos, strict=True)
    ]


async def transition(
    session: AsyncSession,
    kernel: Kernel,
    actor: Actor | None,
    experiment: Experiment,
    action: str,
    if_match: str | None,
) -> None:
    """Move the experiment by ``action`` (start, pause, resume, archive, reinstate); 409 if illegal.

    ``actor`` is None when the scheduler moves it (scheduled start and end, auto-pause).
    """
    check_version(experiment, if_match)
    allowed_from, target, event = TRANSITIONS[action]
    if experiment.status not in allowed_from:
        raise Conflict(f"Cannot {action} an experiment that is {experiment.status}")
    if action == "reinstate":
        if actor is None:
            raise ValueError("reinstating needs a member: it counts toward the plan's experiments")
        await check_limit_for(
            kernel, actor.organization, "experiments", await count_experiments(session, actor.organization_id)
        )
    if action == "start":
        if experiment.kind == "mvt" and not await variants_of(session, experiment.id):
            sections = msgspec.convert(experiment.sections.get("sections", []), list[schemas.MvtSection])
            await _replace_variants(session, experiment, mvt_cells(sections))
        if len(await variants_of(session, experiment.id)) < 2:
            raise ClientException("An experiment needs at least two variants to start")
        experiment.activated_at = experiment.activated_at or kernel.clock()
    experiment.status = target
    experiment.version += 1
    experiment.updated_at = kernel.clock()
    await session.flush()
    await bump(session, experiment.site_id)
    if event:
        emit(
            session,
            event,
            experiment.organization_id,
            {
                "experiment_id": experiment.id,
                "experiment_name": experiment.name,
                "project_id": experiment.site_id,
                "status": target,
                "action": action,
            },
        )


async def delete(session: AsyncSession, experiment: Experiment) -> None:
    """Remove the experiment and everything recorded about it; emits ``experiment.deleted``."""
    emit(
        session,
        "experiment.deleted",
        experiment.organization_id,
        {
            "experiment_id": experiment.id,
            "experiment_name": experiment.name,
            "project_id": experiment.site_id,
        },
    )
    await session.delete(experiment)
    await session.flush()
    await bump(session, experiment.site_id)


def to_out(
    experiment: Experiment, variants: list[Variant], warnings: list[str] | None = None
) -> schemas.ExperimentOut:
    """The API view of an experiment."""
    return schemas.ExperimentOut(
        id=experiment.id,
        project_id=experiment.site_id,
        name=experiment.name,
        slug=experiment.slug,
        description=experiment.description,
        hypothesis=experiment.hypothesis,
        type=experiment.kind,
        status=experiment.status,
        hash_seed=experiment.hash_seed,
        version=experiment.version,
        activation_delay_ms=experiment.activation_delay_ms,
        variants=[
            msgspec.convert(
                {"id": v.id, "key": v.key, "name": v.name, "weight": v.weight, **v.changes},
                schemas.VariantOut,
            )
            for v in variants
        ],
        targeting=msgspec.convert(experiment.targeting, schemas.Targeting),
        audience=msgspec.convert(experiment.audience, schemas.Audience),
        goals=msgspec.convert(experiment.goals.get("goals", []), list[schemas.Goal]),
        funnels=msgspec.convert(experiment.goals.get("funnels", []), list[schemas.Funnel]),
        advanced=msgspec.convert(experiment.advanced, schemas.Advanced),
        sections=msgspec.convert(experiment.sections.get("sections", []), list[schemas.MvtSection]),
        integrations=experiment.integrations,
        activated_at=experiment.activated_at,
        created_at=experiment.created_at,
        updated_at=experiment.updated_at,
        warnings=warnings or [],
    )
