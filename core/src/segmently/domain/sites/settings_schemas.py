"""Bodies of the per-site settings API: plugin switches, cross-domain list, conversion rules, defaults."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

MAX_RULES = 50
MAX_STEPS = 10
MAX_DOMAINS = 50
DEFAULT_ACTIVATION_DELAY_MS = 100
DEFAULT_ANTI_FLICKER_TIMEOUT_MS = 5000

DetectionMethod = Literal["page_url", "url_param", "local_storage", "cookie"]
EventType = Literal["conversion", "login", "registration"]
RuleId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
RuleName = Annotated[str, msgspec.Meta(min_length=1, max_length=120, pattern=r"\S")]
StepValue = Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]
PropertyPath = Annotated[
    str,
    msgspec.Meta(
        max_length=200,
        pattern=r"^$|^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*$",
        description="Dot notation into the parsed JSON: amount, user.id, cart.items.length",
    ),
]
Hostname = Annotated[str, msgspec.Meta(min_length=1, max_length=253)]
ActivationDelay = Annotated[int, msgspec.Meta(ge=0, le=10_000)]
AntiFlickerTimeout = Annotated[int, msgspec.Meta(ge=100, le=30_000)]


class ConversionStep(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One detection condition.

    Attributes:
        method: ``page_url`` (a relative path such as ``/checkout/success``), ``url_param``
            (a query parameter name, fires when present), ``local_storage`` (a key) or
            ``cookie`` (a cookie name).
        value: The path, parameter name, key or cookie name.
        parse_json: Read the stored value as JSON (``local_storage`` and ``cookie`` only).
        property_path: With ``parse_json``: the nested field to read (``cart.items.length``);
            none checks that the value exists.
    """

    method: DetectionMethod
    value: StepValue
    parse_json: bool = False
    property_path: PropertyPath | None = None


class ConversionRuleIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A named event fired by one condition (single) or by several in order (multi-step)."""

    id: RuleId | None = None
    name: RuleName
    event_type: EventType
    steps: Annotated[list[ConversionStep], msgspec.Meta(min_length=1, max_length=MAX_STEPS)]


class ConversionRuleOut(msgspec.Struct, kw_only=True):
    """A stored conversion rule; ``id`` is assigned by the server when the client sent none."""

    id: str
    name: str
    event_type: EventType
    steps: list[ConversionStep]


class SiteSettingsIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``PUT /api/v1/projects/{project_id}/settings``: replaces every setting; omitted ones get defaults."""

    plugins: dict[str, bool] = {}
    cross_domain: Annotated[list[Hostname], msgspec.Meta(max_length=MAX_DOMAINS)] = []
    conversion_rules: Annotated[list[ConversionRuleIn], msgspec.Meta(max_length=MAX_RULES)] = []
    activation_delay_ms: ActivationDelay = DEFAULT_ACTIVATION_DELAY_MS
    anti_flicker_timeout_ms: AntiFlickerTimeout = DEFAULT_ANTI_FLICKER_TIMEOUT_MS


class StoredSettings(msgspec.Struct, kw_only=True):
    """The ``site_settings.settings`` document; ``plugins`` holds only the switches that were set."""

    plugins: dict[str, bool] = {}
    cross_domain: list[str] = []
    conversion_rules: list[ConversionRuleOut] = []
    activation_delay_ms: int = DEFAULT_ACTIVATION_DELAY_MS
    anti_flicker_timeout_ms: int = DEFAULT_ANTI_FLICKER_TIMEOUT_MS


class SiteSettingsOut(msgspec.Struct, kw_only=True):
    """A site's settings; ``plugins`` names every installed plugin (on unless switched off)."""

    version: int
    plugins: dict[str, bool]
    cross_domain: list[str]
    conversion_rules: list[ConversionRuleOut]
    activation_delay_ms: int
    anti_flicker_timeout_ms: int


class RuleTestIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``POST …/settings/test-rule``: would this ``page_url`` or ``url_param`` step fire on ``url``?"""

    step: ConversionStep
    url: Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]


class RuleTestOut(msgspec.Struct, kw_only=True):
    """The dashboard's "Would fire" / "Would not fire" badge."""

    would_fire: bool
