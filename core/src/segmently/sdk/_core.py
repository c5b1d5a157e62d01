"""What both clients share: the config document, its parsed snapshot, answering the server, deciding.

Import the public names from :mod:`segmently.sdk`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

import httpx
import msgspec

from segmently import __version__
from segmently.assignment import ExperimentRules, VisitorContext, WeightedVariant, evaluate, flag_enabled
from segmently.targeting import AttributeRule, Device, ReferralSource, UrlRule, VisitorType

CONFIG_PATH: Final = "/api/v1/sdk/config"
USER_AGENT: Final = f"segmently-python/{__version__}"

log = logging.getLogger("segmently.sdk")


class SegmentlyError(Exception):
    """The config could not be fetched or read.

    Attributes:
        status_code: the HTTP status the server answered, or None (unreachable, unreadable answer).
        detail: the server's ``detail`` (``Unknown site API key``) or what went wrong.
    """

    def __init__(self, message: str, *, status_code: int | None = None, detail: str = "") -> None:
        super().__init__(message)
        self.status_code = status_code
        self.detail = detail or message


class Variant(msgspec.Struct, frozen=True):
    """The variant a visitor sees: the ``id`` events name it by, its ``key`` and its display ``name``."""

    id: str
    key: str
    name: str


# --- the config document (only what evaluation reads; unknown fields are ignored) ----------------


class _VariantDoc(msgspec.Struct, frozen=True):
    id: str
    key: str
    name: str
    weight: float


class _TargetingDoc(msgspec.Struct, frozen=True):
    url_rules: tuple[UrlRule, ...] = ()
    devices: tuple[Device, ...] = ()
    countries: tuple[str, ...] = ()
    traffic_percentage: float = 100.0


class _AudienceDoc(msgspec.Struct, frozen=True):
    visitor_type: VisitorType = "all"
    attribute_rules: tuple[AttributeRule, ...] = ()
    referral_sources: tuple[ReferralSource, ...] = ()


class _ExperimentDoc(msgspec.Struct, frozen=True):
    slug: str
    seed: str
    variants: tuple[_VariantDoc, ...]
    status: str = "live"
    preview: bool = False
    targeting: _TargetingDoc = msgspec.field(default_factory=_TargetingDoc)
    audience: _AudienceDoc = msgspec.field(default_factory=_AudienceDoc)


class _Slug(msgspec.Struct):
    slug: str = "?"


class _FlagDoc(msgspec.Struct, frozen=True):
    key: str
    rollout: float


class _ConfigDoc(msgspec.Struct):
    experiments: list[msgspec.Raw] = []
    flags: list[_FlagDoc] = []


class _Experiment:
    """One live experiment: the engine's rules and the variants in the rules' order."""

    __slots__ = ("rules", "variants")

    def __init__(self, rules: ExperimentRules, variants: tuple[Variant, ...]) -> None:
        self.rules = rules
        self.variants = variants


class Snapshot:
    """One version of the config, ready to evaluate: built once per ``200`` answer."""

    __slots__ = ("etag", "experiments", "flags")

    def __init__(
        self, etag: str | None, experiments: dict[str, _Experiment], flags: dict[str, float]
    ) -> None:
        self.etag = etag
        self.experiments = experiments
        self.flags = flags


def _rules(doc: _ExperimentDoc) -> ExperimentRules:
    """The engine's view of a served experiment, the same as the server's ``rules_of``."""
    t, a = doc.targeting, doc.audience
    return ExperimentRules(
        hash_seed=doc.seed,
        variants=tuple(WeightedVariant(id=v.id, key=v.key, weight=v.weight) for v in doc.variants),
        traffic_percentage=t.traffic_percentage,
        url_rules=t.url_rules,
        devices=t.devices,
        countries=t.countries,
        visitor_type=a.visitor_type,
        attribute_rules=a.attribute_rules,
        referral_sources=a.referral_sources,
    )


def parse_config(body: bytes, etag: str | None, previous: Snapshot | None) -> Snapshot:
    """Build a snapshot; rules equal to the previous version's are reused with their prepared hasher.

    An experiment this version cannot read (say, a rule type added to the server later) is left out
    with a warning instead of failing the whole config.
    """
    try:
        doc = msgspec.json.decode(body, type=_ConfigDoc)
    except msgspec.DecodeError as exc:
        raise SegmentlyError(f"The Segmently config is not readable: {exc}") from exc
    before = previous.experiments if previous is not None else {}
    experiments: dict[str, _Experiment] = {}
    for raw in doc.experiments:
        try:
            e = msgspec.json.decode(raw, type=_ExperimentDoc)
        except msgspec.DecodeError as exc:
            try:
                slug = msgspec.json.decode(raw, type=_Slug).slug
            except msgspec.DecodeError:
                slug = "?"
            log.warning("Segmently: experiment %r is left out, this SDK cannot read it: %s", slug, exc)
            continue
        if e.status != "live" or e.preview:
            continue
        rules = _rules(e)
        kept = before.get(e.slug)
        if kept is not None and kept.rules == rules:
            rules = kept.rules
        experiments[e.slug] = _Experiment(rules, tuple(Variant(v.id, v.key, v.name) for v in e.variants))
    return Snapshot(etag, experiments, {f.key: f.rollout for f in doc.flags})


def error_of(response: httpx.Response) -> SegmentlyError:
    """The error for an answer that is not the config, with the server's ``detail`` when it sent one."""
    detail = ""
    try:
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("detail"), str):
            detail = body["detail"]
    except ValueError:
        pass
    detail = detail or response.text[:200].strip() or response.reason_phrase
    return SegmentlyError(
        f"Segmently answered {response.status_code} for {response.request.url}: {detail}",
        status_code=response.status_code,
        detail=detail,
    )


class ClientBase:
    """What both clients share: the cached snapshot, answering the server, evaluating."""

    def __init__(self, api_key: str, base_url: str, refresh_seconds: float) -> None:
        if not api_key:
            raise ValueError("api_key is required (the site's key, seg_live_…)")
        if refresh_seconds < 0:
            raise ValueError("refresh_seconds must not be negative")
        self.refresh_seconds = refresh_seconds
        self._url = base_url.rstrip("/") + CONFIG_PATH
        self._headers = {"X-API-Key": api_key, "User-Agent": USER_AGENT, "Accept": "application/json"}
        self._snapshot: Snapshot | None = None
        self._due = 0.0  # time.monotonic() of the next revalidation

    @property
    def etag(self) -> str | None:
        """The entity tag of the config in use, None before the first successful fetch."""
        s = self._snapshot
        return s.etag if s is not None else None

    def _request_headers(self) -> dict[str, str]:
        s = self._snapshot
        if s is None or s.etag is None:
            return self._headers
        return {**self._headers, "If-None-Match": s.etag}

    def _accept(self, response: httpx.Response) -> bool:
        """Take a config answer in; whether it brought a new config (``False``: ``304``)."""
        if response.status_code == 304 and self._snapshot is not None:
            return False
        if response.status_code != 200:
            raise error_of(response)
        self._snapshot = parse_config(response.content, response.headers.get("etag"), self._snapshot)
        return True

    def _unreachable(self, exc: httpx.HTTPError) -> SegmentlyError:
        return SegmentlyError(f"Segmently is not reachable at {self._url}: {exc!r}", detail=str(exc))

    def _log_failure(self, exc: SegmentlyError) -> None:
        if self._snapshot is None:
            log.warning("%s; without a config every experiment is off and every flag False", exc)
        else:
            log.warning("%s; serving the last config (ETag %s)", exc, self._snapshot.etag)

    @staticmethod
    def _variant(
        snapshot: Snapshot | None,
        experiment_slug: str,
        visitor_id: str,
        url: str | None,
        device: Device | None,
        viewport_width: float | None,
        country: str | None,
        is_returning: bool,
        attributes: Mapping[str, Any] | None,
        referrer: str | None,
    ) -> Variant | None:
        if snapshot is None:
            return None
        experiment = snapshot.experiments.get(experiment_slug)
        if experiment is None:
            return None
        decision = evaluate(
            experiment.rules,
            VisitorContext(
                visitor_id=visitor_id,
                url=url,
                device=device,
                viewport_width=viewport_width,
                country=country,
                is_returning=is_returning,
                attributes=attributes if isinstance(attributes, dict) else dict(attributes or {}),
                referrer=referrer,
            ),
        )
        return experiment.variants[decision.variant_index] if decision.variant_index >= 0 else None

    @staticmethod
    def _enabled(snapshot: Snapshot | None, flag_key: str, visitor_id: str) -> bool:
        rollout = snapshot.flags.get(flag_key) if snapshot is not None else None
        return rollout is not None and flag_enabled(flag_key, rollout, visitor_id, True)

    @staticmethod
    def _all_flags(snapshot: Snapshot | None, visitor_id: str) -> dict[str, bool]:
        if snapshot is None:
            return {}
        return {key: flag_enabled(key, rollout, visitor_id, True) for key, rollout in snapshot.flags.items()}
