"""The wizard's tabs: what each shows (its state) and its add/remove buttons.

A tab's state comes from the stored configuration (``state_of``) or from a post (``wizard_forms.read``
with the tab's shape); ``wizard_patch.patch_of`` turns it into the API patch the tab saves. ``edit``
runs a server-side "+ Add" or "Remove" button without saving.
"""

from __future__ import annotations

import datetime as dt
import re
import string
from typing import Any

import msgspec

from segmently.dashboard.wizard_forms import Shape, even_weights, percent
from segmently.domain.experiments.schemas import ExperimentIn

TITLES = {
    "details": "Details",
    "variants": "Variants",
    "targeting": "Targeting",
    "audience": "Audience",
    "goals": "Goals & funnels",
    "advanced": "Advanced",
    "integrations": "Integrations",
    "review": "Review & launch",
}
TABS = tuple(TITLES)
NOTICES = {tab: f"{title} saved." for tab, title in TITLES.items()} | {"created": "Draft created."}
DELAYS = {
    "0": "Immediate (0 ms)",
    "100": "Fast (100 ms)",
    "500": "Standard (500 ms)",
    "1000": "Safe (1000 ms)",
}
OPERATORS = {
    "equals": "equals",
    "not_equals": "does not equal",
    "contains": "contains",
    "greater_than": "is greater than",
    "less_than": "is less than",
    "exists": "exists",
    "not_exists": "does not exist",
}
URL_RULES = {
    "exact": "Exact",
    "contains": "Contains",
    "starts_with": "Starts with",
    "ends_with": "Ends with",
    "regex": "Regex",
}
GOAL_TYPES = {
    "click": "Click element",
    "form_submit": "Form submit",
    "page_view": "Page view",
    "custom_event": "Custom event",
}
DEVICES = {"desktop": "Desktop", "tablet": "Tablet", "mobile": "Mobile"}
REFERRALS = {
    "organic": "Organic search",
    "paid": "Paid",
    "social": "Social",
    "email": "Email",
    "direct": "Direct",
    "other": "Other",
}
GA4_ID = re.compile(r"^G-[A-Z0-9]{4,20}$")
MIXPANEL_TOKEN = re.compile(r"^[A-Za-z0-9]{8,64}$")

SHAPES: dict[str, Shape] = {
    "details": {"name": str, "slug": str, "description": str, "hypothesis": str},
    "variants": {"variants": [{"name": str, "key": str, "weight": str, "original_key": str}]},
    "sections": {"sections": [{"name": str, "variations": [{"name": str, "key": str, "original_key": str}]}]},
    "targeting": {
        "targeting": {
            "url_rules": [{"type": str, "value": str}],
            "devices": list,
            "countries": str,
            "traffic_percentage": str,
        }
    },
    "audience": {
        "audience": {
            "visitor_type": str,
            "attribute_rules": [{"key": str, "operator": str, "value": str}],
            "triggers": {"scroll_percent": str, "time_seconds": str, "click_selector": str},
            "referral_sources": list,
        }
    },
    "goals": {
        "goals": [{"type": str, "name": str, "selector": str, "url": str, "event_name": str, "id": str}],
        "primary_goal": str,
        "funnels": [{"name": str, "id": str, "steps": [{"label": str, "url": str, "event_name": str}]}],
    },
    "advanced": {
        "activation_delay": str,
        "activation_delay_ms": str,
        "advanced": {
            "start_at": str,
            "end_at": str,
            "auto_pause_at_significance": bool,
            "max_duration_days": str,
            "cross_domain": str,
            "custom_css": str,
            "custom_js": str,
        },
    },
    "integrations": {"integrations": {"ga4": {"measurement_id": str}, "mixpanel": {"project_token": str}}},
}


def shape_of(tab: str, kind: str) -> Shape:
    """The form's shape of a tab (a multivariate test's Variants tab holds its sections)."""
    return SHAPES["sections" if tab == "variants" and kind == "mvt" else tab]


def starter(kind: str) -> dict[str, Any]:
    """What a new draft starts with, so it is valid from the first tab: a 50/50 test or one MVT section."""
    if kind == "mvt":
        variations = [{"key": "control", "name": "Control"}, {"key": "variation_b", "name": "Variation B"}]
        return {"sections": [{"name": "Section 1", "variations": variations}]}
    return {
        "variants": [
            {"key": "control", "name": "Control", "weight": 50},
            {"key": "variant_b", "name": "Variant B", "weight": 50},
        ]
    }


# ------------------------------------------------------------------ stored → form ---


def _utc_text(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M") if value else ""


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _integration(cfg: ExperimentIn, name: str, field: str) -> str:
    value = cfg.integrations.get(name)
    return str(value.get(field, "")) if isinstance(value, dict) else ""


def state_of(tab: str, cfg: ExperimentIn) -> dict[str, Any]:
    """The tab's state from the stored configuration."""
    if tab == "details":
        return {
            "name": cfg.name,
            "slug": cfg.slug or "",
            "description": cfg.description,
            "hypothesis": cfg.hypothesis,
        }
    if tab == "variants" and cfg.type == "mvt":
        return {
            "sections": [
                {
                    "name": s.name,
                    "variations": [
                        {"name": v.name, "key": v.key, "original_key": v.key} for v in s.variations
                    ],
                }
                for s in cfg.sections
            ]
        }
    if tab == "variants":
        return {
            "variants": [
                {"name": v.name, "key": v.key, "weight": percent(v.weight), "original_key": v.key}
                for v in cfg.variants
            ]
        }
    if tab == "targeting":
        t = cfg.targeting
        return {
            "targeting": {
                "url_rules": [{"type": r.type, "value": r.value} for r in t.url_rules],
                "devices": list(t.devices),
                "countries": ", ".join(t.countries),
                "traffic_percentage": percent(t.traffic_percentage),
            }
        }
    if tab == "audience":
        a = cfg.audience
        return {
            "audience": {
                "visitor_type": a.visitor_type,
                "attribute_rules": [
                    {"key": r.key, "operator": r.operator, "value": _text(r.value)} for r in a.attribute_rules
                ],
                "triggers": {k: _text(v) for k, v in msgspec.structs.asdict(a.triggers).items()},
                "referral_sources": list(a.referral_sources),
            }
        }
    if tab == "goals":
        primary = next((str(i) for i, g in enumerate(cfg.goals) if g.primary), "")
        return {
            "goals": [
                {k: _text(getattr(g, k)) for k in ("type", "name", "selector", "url", "event_name", "id")}
                for g in cfg.goals
            ],
            "primary_goal": primary,
            "funnels": [
                {
                    "name": f.name,
                    "id": _text(f.id),
                    "steps": [
                        {"label": s.label, "url": s.url, "event_name": _text(s.event_name)} for s in f.steps
                    ],
                }
                for f in cfg.funnels
            ],
        }
    if tab == "advanced":
        adv = cfg.advanced
        delay = str(cfg.activation_delay_ms)
        return {
            "activation_delay": delay if delay in DELAYS else "custom",
            "activation_delay_ms": "" if delay in DELAYS else delay,
            "advanced": {
                "start_at": _utc_text(adv.start_at),
                "end_at": _utc_text(adv.end_at),
                "auto_pause_at_significance": adv.auto_pause_at_significance,
                "max_duration_days": _text(adv.max_duration_days),
                "cross_domain": ", ".join(adv.cross_domain),
                "custom_css": adv.custom_css,
                "custom_js": adv.custom_js,
            },
        }
    if tab == "integrations":
        return {
            "integrations": {
                "ga4": {"measurement_id": _integration(cfg, "ga4", "measurement_id")},
                "mixpanel": {"project_token": _integration(cfg, "mixpanel", "project_token")},
            }
        }
    return {}


# ------------------------------------------------------------------- form → patch ---


_TOKEN = re.compile(r"\.?([a-z_]+)|\[(\d+)\]")


def _walk(state: Any, path: str) -> Any:
    node = state
    for name, index in _TOKEN.findall(path):
        node = node[name] if name else node[int(index)]
    return node


def _letter(keys: set[str], prefix: str) -> str:
    return next((x for x in string.ascii_lowercase[1:] if f"{prefix}{x}" not in keys), "z")


def _new_row(kind: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    keys = {str(r.get("key")) for r in rows}
    if kind == "variants":
        x = _letter(keys, "variant_")
        return {"name": f"Variant {x.upper()}", "key": f"variant_{x}", "weight": "0", "original_key": ""}
    if kind == "sections.variations":
        x = _letter(keys, "variation_")
        return {"name": f"Variation {x.upper()}", "key": f"variation_{x}", "original_key": ""}
    if kind == "sections":
        control = {"name": "Control", "key": "control", "original_key": ""}
        other = {"name": "Variation B", "key": "variation_b", "original_key": ""}
        return {"name": f"Section {len(rows) + 1}", "variations": [control, other]}
    step = {"label": "", "url": "", "event_name": ""}
    blank: dict[str, dict[str, Any]] = {
        "targeting.url_rules": {"type": "contains", "value": ""},
        "audience.attribute_rules": {"key": "", "operator": "equals", "value": ""},
        "goals": {"type": "click", "name": "", "selector": "", "url": "", "event_name": "", "id": ""},
        "funnels": {"name": "", "id": "", "steps": [dict(step), dict(step)]},
        "funnels.steps": step,
    }
    return blank[kind]


def edit(state: dict[str, Any], op: str) -> bool:
    """Run an "+ Add …" (``add:<list>``) or "Remove" (``remove:<row>``) button on the state.

    The control (first variant, first variation of a section) cannot be removed. Adding or
    removing a variant splits the weights evenly again (50/50, 33/33/34 …).
    """
    action, _, path = op.partition(":")
    try:
        if action == "add":
            rows = _walk(state, path)
            rows.append(_new_row(re.sub(r"\[\d+\]", "", path), rows))
        elif action == "remove" and (m := re.fullmatch(r"(.+)\[(\d+)\]", path)):
            rows, index = _walk(state, m.group(1)), int(m.group(2))
            if index == 0 and m.group(1).endswith(("variants", "variations")):
                return False
            rows.pop(index)
        else:
            return False
    except (KeyError, IndexError, TypeError, ValueError):
        return False
    if path.startswith("variants"):
        for row, weight in zip(state["variants"], even_weights(len(state["variants"])), strict=True):
            row["weight"] = weight
    return True
