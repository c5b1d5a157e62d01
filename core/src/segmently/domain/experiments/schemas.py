"""The experiment configuration of the spec's wizard, as the API takes and returns it.

Shapes are checked by msgspec (types, ranges, lengths); rules that span fields
(weights summing to 100, the control first, a valid regex, one primary goal …) are
checked in :mod:`segmently.domain.experiments.validation`, each naming its field.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import msgspec

Key = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_-]{0,99}$", max_length=100)]
Slug = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9-]{0,99}$", max_length=100)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Selector = Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]
Percent = Annotated[float, msgspec.Meta(ge=0, le=100)]
Code = Annotated[str, msgspec.Meta(max_length=100_000)]


class HideChange(msgspec.Struct, tag="hide", tag_field="type", forbid_unknown_fields=True):
    """Hide (or remove) the elements matching ``selector``."""

    selector: Selector
    mode: Literal["hide", "remove"] = "hide"


class TextChange(msgspec.Struct, tag="text", tag_field="type", forbid_unknown_fields=True):
    """Replace the text of the elements matching ``selector``."""

    selector: Selector
    text: Annotated[str, msgspec.Meta(max_length=10_000)]


class HtmlChange(msgspec.Struct, tag="html", tag_field="type", forbid_unknown_fields=True):
    """Replace the inner HTML of the elements matching ``selector``."""

    selector: Selector
    html: Code


class CssChange(msgspec.Struct, tag="css", tag_field="type", forbid_unknown_fields=True):
    """Inject CSS (scoped to nothing: write full rules); ``selector`` names the element it styles."""

    css: Code
    selector: Selector | None = None


class JsChange(msgspec.Struct, tag="js", tag_field="type", forbid_unknown_fields=True):
    """Run JavaScript after the other changes."""

    code: Code


Change = HideChange | TextChange | HtmlChange | CssChange | JsChange


class VariantIn(msgspec.Struct, forbid_unknown_fields=True):
    """An arm of an A/B test; the first is the control (key ``control``)."""

    key: Key
    name: Name
    weight: Percent
    changes: Annotated[list[Change], msgspec.Meta(max_length=200)] = []
    custom_css: Code = ""
    custom_js: Code = ""


class UrlRule(msgspec.Struct, forbid_unknown_fields=True):
    """Where the experiment runs; rules combine with OR."""

    type: Literal["exact", "contains", "starts_with", "ends_with", "regex"]
    value: Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]


class Targeting(msgspec.Struct, forbid_unknown_fields=True):
    """The Targeting tab."""

    url_rules: Annotated[list[UrlRule], msgspec.Meta(max_length=50)] = []
    devices: list[Literal["desktop", "tablet", "mobile"]] = []  # empty: all devices
    countries: Annotated[list[str], msgspec.Meta(max_length=250)] = []  # ISO 3166-1 alpha-2; empty: all
    traffic_percentage: Percent = 100.0


class AttributeRule(msgspec.Struct, forbid_unknown_fields=True):
    """One attribute rule; all rules must pass."""

    key: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    operator: Literal["equals", "not_equals", "contains", "greater_than", "less_than", "exists", "not_exists"]
    value: Annotated[str, msgspec.Meta(max_length=1000)] | None = None


class Triggers(msgspec.Struct, forbid_unknown_fields=True):
    """Behavioral triggers: the first to fire activates the experiment."""

    scroll_percent: int | None = None
    time_seconds: int | None = None
    click_selector: Selector | None = None


class Audience(msgspec.Struct, forbid_unknown_fields=True):
    """The Audience tab."""

    visitor_type: Literal["all", "new", "returning"] = "all"
    attribute_rules: list[AttributeRule] = []
    triggers: Triggers = msgspec.field(default_factory=Triggers)
    referral_sources: list[
        Literal["organic", "paid", "social", "email", "direct", "other"]
    ] = []  # empty: no gate


class Goal(msgspec.Struct, forbid_unknown_fields=True):
    """A conversion goal; one may be primary (the Conversions tile and winner detection)."""

    type: Literal["click", "form_submit", "page_view", "custom_event"]
    name: Name
    primary: bool = False
    selector: Selector | None = None
    url: Annotated[str, msgspec.Meta(max_length=2048)] | None = None
    event_name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None
    # made when missing; at most 64 characters (validation: stored ones are read back as they are)
    id: str | None = None


class FunnelStep(msgspec.Struct, forbid_unknown_fields=True):
    """One step: a path the URL contains (``""``/``/``: the homepage) and/or an event name."""

    label: Name
    url: Annotated[str, msgspec.Meta(max_length=2048)] = ""
    event_name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None


class Funnel(msgspec.Struct, forbid_unknown_fields=True):
    """An ordered multi-page funnel."""

    name: Name
    steps: Annotated[list[FunnelStep], msgspec.Meta(min_length=2, max_length=20)]
    id: str | None = None  # as a goal's


class Advanced(msgspec.Struct, forbid_unknown_fields=True):
    """The Advanced tab."""

    start_at: dt.datetime | None = None
    end_at: dt.datetime | None = None
    auto_pause_at_significance: bool = False
    max_duration_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] | None = None
    cross_domain: Annotated[list[str], msgspec.Meta(max_length=50)] = []  # hosts; a URL gives its host
    custom_css: Code = ""
    custom_js: Code = ""


class MvtVariation(msgspec.Struct, forbid_unknown_fields=True):
    """One variation of an MVT section; the first of each section is its control."""

    key: Key
    name: Name
    changes: Annotated[list[Change], msgspec.Meta(max_length=200)] = []


class MvtSection(msgspec.Struct, forbid_unknown_fields=True):
    """A page element tested with several variations."""

    name: Name
    variations: Annotated[list[MvtVariation], msgspec.Meta(min_length=2, max_length=10)]


class ExperimentIn(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/v1/projects/{id}/experiments``: the whole wizard."""

    name: Name
    variants: Annotated[list[VariantIn], msgspec.Meta(max_length=20)] = []
    slug: Slug | None = None
    description: Annotated[str, msgspec.Meta(max_length=10_000)] = ""
    hypothesis: Annotated[str, msgspec.Meta(max_length=10_000)] = ""
    type: Literal["ab", "mvt"] = "ab"
    # unset: the site's default (its settings' activation_delay_ms, else 100)
    activation_delay_ms: Annotated[int, msgspec.Meta(ge=0, le=10_000)] | msgspec.UnsetType = msgspec.UNSET
    targeting: Targeting = msgspec.field(default_factory=Targeting)
    audience: Audience = msgspec.field(default_factory=Audience)
    goals: Annotated[list[Goal], msgspec.Meta(max_length=20)] = []
    funnels: Annotated[list[Funnel], msgspec.Meta(max_length=10)] = []
    advanced: Advanced = msgspec.field(default_factory=Advanced)
    sections: Annotated[list[MvtSection], msgspec.Meta(max_length=6)] = []
    integrations: dict[str, Any] = {}


class ExperimentPatch(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """``PATCH /api/v1/experiments/{id}``: any subset of the wizard's tabs."""

    name: Name | msgspec.UnsetType = msgspec.UNSET
    slug: Slug | msgspec.UnsetType = msgspec.UNSET
    description: str | msgspec.UnsetType = msgspec.UNSET
    hypothesis: str | msgspec.UnsetType = msgspec.UNSET
    activation_delay_ms: Annotated[int, msgspec.Meta(ge=0, le=10_000)] | msgspec.UnsetType = msgspec.UNSET
    variants: Annotated[list[VariantIn], msgspec.Meta(max_length=20)] | msgspec.UnsetType = msgspec.UNSET
    targeting: Targeting | msgspec.UnsetType = msgspec.UNSET
    audience: Audience | msgspec.UnsetType = msgspec.UNSET
    goals: Annotated[list[Goal], msgspec.Meta(max_length=20)] | msgspec.UnsetType = msgspec.UNSET
    funnels: Annotated[list[Funnel], msgspec.Meta(max_length=10)] | msgspec.UnsetType = msgspec.UNSET
    advanced: Advanced | msgspec.UnsetType = msgspec.UNSET
    sections: Annotated[list[MvtSection], msgspec.Meta(max_length=6)] | msgspec.UnsetType = msgspec.UNSET
    integrations: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET


class VariantOut(msgspec.Struct):
    """An arm as the API returns it; events name it by ``id``."""

    id: str
    key: str
    name: str
    weight: float
    changes: list[Change]
    custom_css: str = ""
    custom_js: str = ""


class ExperimentOut(msgspec.Struct):
    """An experiment with its whole configuration."""

    id: str
    project_id: str
    name: str
    slug: str
    description: str
    hypothesis: str
    type: str
    status: str
    hash_seed: str
    version: int
    activation_delay_ms: int
    variants: list[VariantOut]
    targeting: Targeting
    audience: Audience
    goals: list[Goal]
    funnels: list[Funnel]
    advanced: Advanced
    sections: list[MvtSection]
    integrations: dict[str, Any]
    activated_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    warnings: list[str] = []
