"""The API patch a wizard tab saves: its posted state checked against the API's own field types.

``patch_of(tab, state, cfg, checker)`` returns the part of ``ExperimentPatch`` the tab owns; each bad
value goes into the checker under its input's name, so the page shows it next to the field.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

from segmently.dashboard.wizard_forms import Checker, split_words
from segmently.dashboard.wizard_tabs import DELAYS, GA4_ID, MIXPANEL_TOKEN
from segmently.domain.experiments import schemas
from segmently.domain.experiments.schemas import ExperimentIn


def _when(c: Checker, path: str, text: str) -> dt.datetime | None:
    """A date and time typed in UTC (``datetime-local`` sends no zone)."""
    if not text:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        c.add(path, "must be a date and time (YYYY-MM-DD HH:MM, UTC)")
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _changes(old: schemas.VariantIn | schemas.MvtVariation | None) -> dict[str, Any]:
    """What the visual editor stored on a variant, kept when its row is saved."""
    if old is None:
        return {"changes": []}
    kept: dict[str, Any] = {"changes": msgspec.to_builtins(old.changes)}
    if isinstance(old, schemas.VariantIn):
        kept |= {"custom_css": old.custom_css, "custom_js": old.custom_js}
    return kept


def _variants(c: Checker, state: dict[str, Any], cfg: ExperimentIn) -> dict[str, Any]:
    stored = {v.key: v for v in cfg.variants}
    rows = []
    for i, row in enumerate(state["variants"]):
        p = f"variants[{i}]"
        weight = c.number(f"{p}.weight", row["weight"])
        rows.append(
            {
                "key": c.value(f"{p}.key", row["key"], schemas.VariantIn, "key"),
                "name": c.value(f"{p}.name", row["name"], schemas.VariantIn, "name"),
                "weight": None
                if weight is None
                else c.value(f"{p}.weight", weight, schemas.VariantIn, "weight"),
                **_changes(stored.get(row["original_key"])),
            }
        )
    return {"variants": rows}


def _sections(c: Checker, state: dict[str, Any], cfg: ExperimentIn) -> dict[str, Any]:
    sections = []
    for s, section in enumerate(state["sections"]):
        stored = {v.key: v for v in cfg.sections[s].variations} if s < len(cfg.sections) else {}
        variations = []
        for i, row in enumerate(section["variations"]):
            p = f"sections[{s}].variations[{i}]"
            variations.append(
                {
                    "key": c.value(f"{p}.key", row["key"], schemas.MvtVariation, "key"),
                    "name": c.value(f"{p}.name", row["name"], schemas.MvtVariation, "name"),
                    **_changes(stored.get(row["original_key"])),
                }
            )
        if len(variations) < 2:
            c.add(f"sections[{s}].variations", "a section needs its control and at least one variation")
        name = c.value(f"sections[{s}].name", section["name"], schemas.MvtSection, "name")
        sections.append({"name": name, "variations": variations})
    return {"sections": sections}


def _targeting(c: Checker, state: dict[str, Any]) -> dict[str, Any]:
    t = state["targeting"]
    rules = [
        {
            "type": c.value(f"targeting.url_rules[{i}].type", r["type"], schemas.UrlRule, "type"),
            "value": c.value(f"targeting.url_rules[{i}].value", r["value"], schemas.UrlRule, "value"),
        }
        for i, r in enumerate(t["url_rules"])
    ]
    traffic = c.number("targeting.traffic_percentage", t["traffic_percentage"])
    if traffic is not None:
        traffic = c.value("targeting.traffic_percentage", traffic, schemas.Targeting, "traffic_percentage")
    return {
        "targeting": {
            "url_rules": rules,
            "devices": c.value("targeting.devices", t["devices"], schemas.Targeting, "devices"),
            "countries": [w.upper() for w in split_words(t["countries"])],
            "traffic_percentage": traffic,
        }
    }


def _audience(c: Checker, state: dict[str, Any]) -> dict[str, Any]:
    a = state["audience"]
    rules = []
    for i, r in enumerate(a["attribute_rules"]):
        p = f"audience.attribute_rules[{i}]"
        rules.append(
            {
                "key": c.value(f"{p}.key", r["key"], schemas.AttributeRule, "key"),
                "operator": c.value(f"{p}.operator", r["operator"], schemas.AttributeRule, "operator"),
                "value": c.text(f"{p}.value", r["value"], schemas.AttributeRule, "value"),
            }
        )
    t = a["triggers"]
    return {
        "audience": {
            "visitor_type": c.value(
                "audience.visitor_type", a["visitor_type"], schemas.Audience, "visitor_type"
            ),
            "attribute_rules": rules,
            "triggers": {
                "scroll_percent": c.whole("audience.triggers.scroll_percent", t["scroll_percent"]),
                "time_seconds": c.whole("audience.triggers.time_seconds", t["time_seconds"]),
                "click_selector": c.text(
                    "audience.triggers.click_selector",
                    t["click_selector"],
                    schemas.Triggers,
                    "click_selector",
                ),
            },
            "referral_sources": c.value(
                "audience.referral_sources", a["referral_sources"], schemas.Audience, "referral_sources"
            ),
        }
    }


def _goals(c: Checker, state: dict[str, Any]) -> dict[str, Any]:
    goals = []
    for i, g in enumerate(state["goals"]):
        p = f"goals[{i}]"
        goals.append(
            {
                "type": c.value(f"{p}.type", g["type"], schemas.Goal, "type"),
                "name": c.value(f"{p}.name", g["name"], schemas.Goal, "name"),
                "primary": state["primary_goal"] == str(i),
                "selector": c.text(f"{p}.selector", g["selector"], schemas.Goal, "selector"),
                "url": c.text(f"{p}.url", g["url"], schemas.Goal, "url"),
                "event_name": c.text(f"{p}.event_name", g["event_name"], schemas.Goal, "event_name"),
                "id": g["id"] or None,
            }
        )
    funnels = []
    for f, funnel in enumerate(state["funnels"]):
        steps = []
        for s, step in enumerate(funnel["steps"]):
            p = f"funnels[{f}].steps[{s}]"
            steps.append(
                {
                    "label": c.value(f"{p}.label", step["label"], schemas.FunnelStep, "label"),
                    "url": c.value(f"{p}.url", step["url"], schemas.FunnelStep, "url"),
                    "event_name": c.text(
                        f"{p}.event_name", step["event_name"], schemas.FunnelStep, "event_name"
                    ),
                }
            )
        if len(steps) < 2:
            c.add(f"funnels[{f}].steps", "a funnel needs at least 2 steps")
        name = c.value(f"funnels[{f}].name", funnel["name"], schemas.Funnel, "name")
        funnels.append({"name": name, "steps": steps, "id": funnel["id"] or None})
    return {"goals": goals, "funnels": funnels}


def _advanced(c: Checker, state: dict[str, Any]) -> dict[str, Any]:
    preset = state["activation_delay"]
    delay: int | None = int(preset) if preset in DELAYS else None
    if preset == "custom":
        delay = c.whole("activation_delay_ms", state["activation_delay_ms"], required=True)
        if delay is not None:
            delay = c.value("activation_delay_ms", delay, ExperimentIn, "activation_delay_ms")
    elif preset not in DELAYS:
        c.add("activation_delay", "is not one of the choices")
    a = state["advanced"]
    days = c.whole("advanced.max_duration_days", a["max_duration_days"])
    return {
        "activation_delay_ms": delay,
        "advanced": {
            "start_at": _when(c, "advanced.start_at", a["start_at"]),
            "end_at": _when(c, "advanced.end_at", a["end_at"]),
            "auto_pause_at_significance": a["auto_pause_at_significance"],
            "max_duration_days": None
            if days is None
            else c.value("advanced.max_duration_days", days, schemas.Advanced, "max_duration_days"),
            "cross_domain": split_words(a["cross_domain"]),
            "custom_css": c.value("advanced.custom_css", a["custom_css"], schemas.Advanced, "custom_css"),
            "custom_js": c.value("advanced.custom_js", a["custom_js"], schemas.Advanced, "custom_js"),
        },
    }


def _integrations(c: Checker, state: dict[str, Any], cfg: ExperimentIn) -> dict[str, Any]:
    i = state["integrations"]
    ga4 = i["ga4"]["measurement_id"].upper()
    token = i["mixpanel"]["project_token"]
    if ga4 and not GA4_ID.match(ga4):
        c.add("integrations.ga4.measurement_id", "must look like G-XXXXXXXXXX")
    if token and not MIXPANEL_TOKEN.match(token):
        c.add("integrations.mixpanel.project_token", "must be the 8 to 64 letters and digits Mixpanel shows")
    kept = {k: v for k, v in cfg.integrations.items() if k not in ("ga4", "mixpanel")}
    if ga4:
        kept["ga4"] = {"measurement_id": ga4}
    if token:
        kept["mixpanel"] = {"project_token": token}
    return {"integrations": kept}


def patch_of(tab: str, state: dict[str, Any], cfg: ExperimentIn, c: Checker) -> dict[str, Any]:
    """The part of ``ExperimentPatch`` the tab owns; bad values are recorded in ``c``."""
    if tab == "details":
        patch = {
            "name": c.value("name", state["name"], ExperimentIn, "name"),
            "description": c.value("description", state["description"], ExperimentIn, "description"),
            "hypothesis": c.value("hypothesis", state["hypothesis"], ExperimentIn, "hypothesis"),
        }
        if state["slug"]:
            patch["slug"] = c.value("slug", state["slug"], ExperimentIn, "slug")
        return patch
    if tab == "variants":
        return _sections(c, state, cfg) if cfg.type == "mvt" else _variants(c, state, cfg)
    if tab == "targeting":
        return _targeting(c, state)
    if tab == "audience":
        return _audience(c, state)
    if tab == "goals":
        return _goals(c, state)
    if tab == "advanced":
        return _advanced(c, state)
    if tab == "integrations":
        return _integrations(c, state, cfg)
    return {}


# --------------------------------------------------------------- add / remove rows ---
