"""Rules of an experiment's configuration that span fields; every error names its field."""

from __future__ import annotations

import re

from litestar.exceptions import ValidationException

from segmently.domain.experiments import schemas
from segmently.domain.sdk.config import cross_domain_host
from segmently.http.errors import field_errors
from segmently.targeting import UrlRule, validate_url_rule

MVT_CELL_WARNING = 12
WEIGHT_TOLERANCE = 0.01
MAX_ID_LENGTH = 64
"""Of a goal's or funnel's id: the key the conversion and funnel tables store (``varchar(64)``)."""
# ISO 3166-1 alpha-2, officially assigned codes
_ISO_CODES = (
    "IS CO DE AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO "
    "BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO "
    "DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW "
    "GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ "
    "LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX "
    "MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO "
    "RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL "
    "TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW "
)
ISO_COUNTRIES = frozenset(re.findall(r"[A-Z]{2}", _ISO_CODES))
_HOST = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$|^localhost$")


def _variants(errors: list[tuple[str, str]], variants: list[schemas.VariantIn]) -> None:
    if len(variants) < 2:
        errors.append(("variants", "an A/B test needs the control and at least one variation"))
        return
    if variants[0].key != "control":
        errors.append(("variants[0].key", "the first variant must be the control, with key 'control'"))
    seen: set[str] = set()
    for i, v in enumerate(variants):
        if v.key in seen:
            errors.append((f"variants[{i}].key", f"'{v.key}' is used by another variant"))
        seen.add(v.key)
    total = sum(v.weight for v in variants)
    if abs(total - 100) > WEIGHT_TOLERANCE:
        errors.append(("variants", f"weights must sum to 100 (they sum to {total:g})"))


def _sections(errors: list[tuple[str, str]], sections: list[schemas.MvtSection]) -> None:
    if not sections:
        errors.append(("sections", "a multivariate test needs at least one section"))
    for s, section in enumerate(sections):
        keys = [v.key for v in section.variations]
        for i, key in enumerate(keys):
            if key in keys[:i]:
                errors.append(
                    (f"sections[{s}].variations[{i}].key", f"'{key}' is used twice in this section")
                )


def mvt_cell_count(sections: list[schemas.MvtSection]) -> int:
    """How many cells the sections make (product of their variation counts)."""
    count = 1
    for section in sections:
        count *= len(section.variations)
    return count if sections else 0


def _targeting(errors: list[tuple[str, str]], targeting: schemas.Targeting) -> None:
    for i, rule in enumerate(targeting.url_rules):
        try:  # also refuses regex syntax the browser's JavaScript would read differently
            validate_url_rule(UrlRule(type=rule.type, value=rule.value))
        except ValueError as exc:
            errors.append((f"targeting.url_rules[{i}].value", str(exc)))
    for i, country in enumerate(targeting.countries):
        if country not in ISO_COUNTRIES:
            errors.append(
                (f"targeting.countries[{i}]", f"'{country}' is not an ISO 3166-1 alpha-2 code (e.g. US)")
            )


def _audience(errors: list[tuple[str, str]], audience: schemas.Audience) -> None:
    if len(audience.attribute_rules) > 10:
        errors.append(("audience.attribute_rules", "at most 10 attribute rules per experiment"))
    for i, rule in enumerate(audience.attribute_rules):
        if rule.key in ("__proto__", "constructor", "prototype"):
            errors.append((f"audience.attribute_rules[{i}].key", f"'{rule.key}' is a reserved name"))
        if rule.operator not in ("exists", "not_exists") and rule.value is None:
            errors.append((f"audience.attribute_rules[{i}].value", f"is required with '{rule.operator}'"))
    t = audience.triggers
    if t.scroll_percent is not None and not (5 <= t.scroll_percent <= 100 and t.scroll_percent % 5 == 0):
        errors.append(("audience.triggers.scroll_percent", "must be between 5 and 100, in steps of 5"))
    if t.time_seconds is not None and not 1 <= t.time_seconds <= 600:
        errors.append(("audience.triggers.time_seconds", "must be between 1 and 600 seconds"))


def _goals(errors: list[tuple[str, str]], goals: list[schemas.Goal], funnels: list[schemas.Funnel]) -> None:
    needs = {"click": "selector", "form_submit": "selector", "page_view": "url", "custom_event": "event_name"}
    for i, goal in enumerate(goals):
        field = needs[goal.type]
        if not getattr(goal, field):
            errors.append((f"goals[{i}].{field}", f"is required for a {goal.type} goal"))
        _id(errors, f"goals[{i}].id", goal.id)
    if sum(1 for g in goals if g.primary) > 1:
        errors.append(("goals", "only one goal can be primary"))
    for f, funnel in enumerate(funnels):
        _id(errors, f"funnels[{f}].id", funnel.id)
        for s, step in enumerate(funnel.steps):
            if step.url and not step.url.startswith("/"):
                errors.append((f"funnels[{f}].steps[{s}].url", "must be a path starting with / (or empty)"))


def _id(errors: list[tuple[str, str]], field: str, value: str | None) -> None:
    """A goal's or funnel's own id (none or empty: one is made), as conversions are stored under it."""
    if value and (len(value) > MAX_ID_LENGTH or not value.isprintable()):
        errors.append((field, f"must be at most {MAX_ID_LENGTH} printable characters (or omitted)"))


def _advanced(errors: list[tuple[str, str]], advanced: schemas.Advanced) -> None:
    for field in ("start_at", "end_at"):
        value = getattr(advanced, field)
        if value is not None and value.tzinfo is None:
            errors.append((f"advanced.{field}", "needs a time zone (e.g. 2026-12-01T09:00:00Z)"))
    start, end = advanced.start_at, advanced.end_at
    if start and end and start.tzinfo and end.tzinfo and end <= start:
        errors.append(("advanced.end_at", "must be after start_at"))
    for i, entry in enumerate(advanced.cross_domain):  # a URL gives its host; the host is stored
        if not _HOST.match(cross_domain_host(entry) or ""):
            errors.append(
                (f"advanced.cross_domain[{i}]", f"'{entry}' is not a host name (e.g. shop.example.com)")
            )


def validate(cfg: schemas.ExperimentIn) -> list[str]:
    """Raise a 400 naming every bad field; returns warnings (e.g. more than 12 MVT cells)."""
    errors: list[tuple[str, str]] = []
    warnings: list[str] = []
    if cfg.type == "ab":
        _variants(errors, cfg.variants)
        if cfg.sections:
            errors.append(("sections", "only a multivariate test has sections"))
    else:
        _sections(errors, cfg.sections)
        if cfg.variants:
            errors.append(
                ("variants", "a multivariate test's cells are generated from its sections at launch")
            )
        cells = mvt_cell_count(cfg.sections)
        if cells > MVT_CELL_WARNING:
            warnings.append(
                f"{cells} cells: each gets only {100 / cells:.1f}% of traffic; plan for 1,000+ "
                "visitors per cell"
            )
    _targeting(errors, cfg.targeting)
    _audience(errors, cfg.audience)
    _goals(errors, cfg.goals, cfg.funnels)
    _advanced(errors, cfg.advanced)
    if errors:
        raise _as_exception(errors)
    return warnings


def _as_exception(errors: list[tuple[str, str]]) -> ValidationException:
    detail = "; ".join(f"{f}: {m}" for f, m in errors)
    return field_errors(errors, detail=detail)
