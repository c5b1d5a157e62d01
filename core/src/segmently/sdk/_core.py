"""What both clients share: the config document, its parsed snapshot, answering the server, deciding.

The events they queue (``track()``, assignments) live in :mod:`segmently.sdk._events`.

Import the public names from :mod:`segmently.sdk`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any, Final

import httpx
import msgspec

from segmently import __version__
from segmently.assignment import ExperimentRules, VisitorContext, WeightedVariant, evaluate, flag_enabled
from segmently.sdk._events import (
    ASSIGNMENT_EVENT,
    EVENTS_PATH,
    MAX_URL_LENGTH,
    EventQueue,
    EventSettings,
    detail_of,
    encode_event,
)
from segmently.targeting import (
    AttributeRule,
    Device,
    ReferralSource,
    UrlRule,
    VisitorType,
    device_for_width,
)

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
    id: str = ""  # what assignment events name the experiment by
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
    """One live experiment: its id, the engine's rules and the variants in the rules' order."""

    __slots__ = ("id", "rules", "variants")

    def __init__(self, id: str, rules: ExperimentRules, variants: tuple[Variant, ...]) -> None:
        self.id = id
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
        experiments[e.slug] = _Experiment(
            e.id, rules, tuple(Variant(v.id, v.key, v.name) for v in e.variants)
        )
    return Snapshot(etag, experiments, {f.key: f.rollout for f in doc.flags})


def error_of(response: httpx.Response) -> SegmentlyError:
    """The error for an answer that is not the config, with the server's ``detail`` when it sent one."""
    detail = detail_of(response)
    return SegmentlyError(
        f"Segmently answered {response.status_code} for {response.request.url}: {detail}",
        status_code=response.status_code,
        detail=detail,
    )


class ClientBase:
    """What both clients share: the cached snapshot, answering the server, evaluating, queueing events."""

    def __init__(
        self, api_key: str, base_url: str, refresh_seconds: float, event_settings: EventSettings
    ) -> None:
        if not api_key:
            raise ValueError("api_key is required (the site's key, seg_live_…)")
        if refresh_seconds < 0:
            raise ValueError("refresh_seconds must not be negative")
        self.refresh_seconds = refresh_seconds
        self.event_settings = event_settings
        base = base_url.rstrip("/")
        self._url = base + CONFIG_PATH
        self._headers = {"X-API-Key": api_key, "User-Agent": USER_AGENT, "Accept": "application/json"}
        self._events_url = base + EVENTS_PATH
        self._events_headers = {**self._headers, "Content-Type": "application/json"}
        self._snapshot: Snapshot | None = None
        self._due = 0.0  # time.monotonic() of the next revalidation
        self._queue = EventQueue(
            event_settings.batch_size, event_settings.max_queue_size, event_settings.assignment_cache_size
        )
        self._closed = False

    @property
    def queued_events(self) -> int:
        """How many events wait to be sent."""
        return len(self._queue)

    def _queued(self, full: bool) -> None:
        """An event was queued: start the sender if it is not running; wake it when a batch is full."""
        raise NotImplementedError

    def _enqueue(
        self,
        visitor_id: str,
        event_name: str,
        event_data: Mapping[str, Any] | None,
        event_id: str | None,
        session_id: str | None,
        experiment_id: str | None,
        variant_id: str | None,
        url: str | None,
        device_type: str | None,
        timestamp: dt.datetime | str | None,
    ) -> str:
        if self._closed:
            raise RuntimeError("the Segmently client is closed")
        event_id, body = encode_event(
            visitor_id,
            event_name,
            event_data,
            event_id=event_id,
            session_id=session_id,
            experiment_id=experiment_id,
            variant_id=variant_id,
            url=url,
            device_type=device_type,
            timestamp=timestamp,
        )
        self._queued(self._queue.put(body))
        return event_id

    def _assigned(
        self,
        experiment: _Experiment,
        variant: Variant,
        visitor_id: str,
        url: str | None,
        device: Device | None,
        viewport_width: float | None,
    ) -> None:
        """Queue the ``assignment`` event the first time this client puts the visitor in the experiment."""
        if self._closed or not self.event_settings.track_assignments or not experiment.id:
            return
        if not self._queue.first_assignment(experiment.id, visitor_id):
            return
        if device is None and viewport_width is not None:
            device = device_for_width(viewport_width)
        if url is not None and len(url) > MAX_URL_LENGTH:
            url = None  # the assignment counts more than the page it happened on
        try:
            _, body = encode_event(
                visitor_id,
                ASSIGNMENT_EVENT,
                experiment_id=experiment.id,
                variant_id=variant.id,
                url=url,
                device_type=device,
            )
        except (TypeError, ValueError) as exc:  # say, an empty visitor id: deciding must not fail
            log.debug("Segmently: no assignment event for %r: %s", visitor_id, exc)
            return
        self._queued(self._queue.put(body))

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

    def _variant(
        self,
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
        if decision.variant_index < 0:
            return None
        variant = experiment.variants[decision.variant_index]
        self._assigned(experiment, variant, visitor_id, url, device, viewport_width)
        return variant

    @staticmethod
    def _enabled(snapshot: Snapshot | None, flag_key: str, visitor_id: str) -> bool:
        rollout = snapshot.flags.get(flag_key) if snapshot is not None else None
        return rollout is not None and flag_enabled(flag_key, rollout, visitor_id, True)

    @staticmethod
    def _all_flags(snapshot: Snapshot | None, visitor_id: str) -> dict[str, bool]:
        if snapshot is None:
            return {}
        return {key: flag_enabled(key, rollout, visitor_id, True) for key, rollout in snapshot.flags.items()}
