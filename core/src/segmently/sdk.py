"""Server-side SDK: evaluate a site's experiments and feature flags locally, in your own Python app.

The client fetches the document ``GET /api/v1/sdk/config`` serves (with the site's API key), keeps it,
and answers :meth:`~SegmentlyClient.get_variant`, :meth:`~SegmentlyClient.is_enabled` and
:meth:`~SegmentlyClient.get_all_flags` from memory with :mod:`segmently.assignment`, the engine the
server's ``/assign`` endpoint and the snippet use, so a visitor gets the same bucket everywhere.

* The config is revalidated with ``If-None-Match`` at most every ``refresh_seconds``, lazily, by the
  first evaluation after that time (``refresh()`` forces it); a ``304`` keeps the cached config.
* A failed revalidation keeps serving the last good config and logs a warning (logger
  ``segmently.sdk``); without any config yet every experiment is off (``None``) and every flag
  ``False``. Only :meth:`~SegmentlyClient.refresh` raises :class:`SegmentlyError`; call it at startup
  to fail fast on a wrong API key or URL.
* Local evaluation is deterministic but does not consult the assignments the server stored: it
  equals ``/assign`` for visitors the server has not seen, and for the others as long as weights and
  traffic are not lowered. Changing the weights of a live experiment moves visitors between variants.

:class:`SegmentlyClient` is for threaded (WSGI) apps, :class:`AsyncSegmentlyClient` for asyncio (ASGI)
apps; both have the same methods and share one instance per process (the async one per event loop).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any, Final, Self

import httpx
import msgspec

from segmently import __version__
from segmently.assignment import ExperimentRules, VisitorContext, WeightedVariant, evaluate, flag_enabled
from segmently.targeting import AttributeRule, Device, ReferralSource, UrlRule, VisitorType

__all__ = ["CONFIG_PATH", "AsyncSegmentlyClient", "SegmentlyClient", "SegmentlyError", "Variant"]

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


class _Snapshot:
    """One version of the config, ready to evaluate: built once per ``200`` answer."""

    __slots__ = ("etag", "experiments", "flags")

    def __init__(self, etag: str | None, experiments: dict[str, _Experiment], flags: dict[str, float]) -> None:
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


def _parse(body: bytes, etag: str | None, previous: _Snapshot | None) -> _Snapshot:
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
    return _Snapshot(etag, experiments, {f.key: f.rollout for f in doc.flags})


def _error_of(response: httpx.Response) -> SegmentlyError:
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


class _Client:
    """What both clients share: the cached snapshot, answering the server, evaluating."""

    def __init__(self, api_key: str, base_url: str, refresh_seconds: float) -> None:
        if not api_key:
            raise ValueError("api_key is required (the site's key, seg_live_…)")
        if refresh_seconds < 0:
            raise ValueError("refresh_seconds must not be negative")
        self.refresh_seconds = refresh_seconds
        self._url = base_url.rstrip("/") + CONFIG_PATH
        self._headers = {"X-API-Key": api_key, "User-Agent": USER_AGENT, "Accept": "application/json"}
        self._snapshot: _Snapshot | None = None
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
            raise _error_of(response)
        self._snapshot = _parse(response.content, response.headers.get("etag"), self._snapshot)
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
        snapshot: _Snapshot | None,
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
    def _enabled(snapshot: _Snapshot | None, flag_key: str, visitor_id: str) -> bool:
        rollout = snapshot.flags.get(flag_key) if snapshot is not None else None
        return rollout is not None and flag_enabled(flag_key, rollout, visitor_id, True)

    @staticmethod
    def _all_flags(snapshot: _Snapshot | None, visitor_id: str) -> dict[str, bool]:
        if snapshot is None:
            return {}
        return {key: flag_enabled(key, rollout, visitor_id, True) for key, rollout in snapshot.flags.items()}


class SegmentlyClient(_Client):
    """The SDK for threaded apps (Django, Flask, any WSGI server); one instance per process.

    Args:
        api_key: the site's API key (``seg_live_…``), sent as ``X-API-Key``.
        base_url: where Segmently runs, e.g. ``https://segmently.example.com``.
        refresh_seconds: revalidate the config at most this often (lazily, on use).
        timeout: seconds allowed for each phase of a config request (connect, read, …).
        transport: an httpx transport to use instead of the default one (proxies, tests).
    """

    def __init__(
        self,
        api_key: str,
        base_url: str,
        *,
        refresh_seconds: float = 30,
        timeout: float = 5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(api_key, base_url, refresh_seconds)
        self._http = httpx.Client(timeout=timeout, transport=transport)
        self._lock = threading.Lock()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connections; the client cannot fetch afterwards."""
        self._http.close()

    def refresh(self) -> bool:
        """Fetch the config now (``If-None-Match`` when one is cached).

        Returns:
            True when a new config was loaded, False when the cached one is current (``304``).

        Raises:
            SegmentlyError: the server refused the key (401), is unreachable, or answered something
                else than the config; the last good config stays in use.
        """
        with self._lock:
            return self._fetch()

    def _fetch(self) -> bool:
        try:
            try:
                response = self._http.get(self._url, headers=self._request_headers())
            except httpx.HTTPError as exc:
                raise self._unreachable(exc) from exc
            return self._accept(response)
        finally:
            self._due = time.monotonic() + self.refresh_seconds

    def _current(self) -> _Snapshot | None:
        """The config to evaluate with, revalidated first when due.

        While one thread revalidates, the others keep using the cached config; only without one do
        they wait for it.
        """
        if time.monotonic() >= self._due and self._lock.acquire(blocking=self._snapshot is None):
            try:
                if time.monotonic() >= self._due:
                    try:
                        self._fetch()
                    except SegmentlyError as exc:
                        self._log_failure(exc)
            finally:
                self._lock.release()
        return self._snapshot

    def get_variant(
        self,
        experiment_slug: str,
        visitor_id: str,
        *,
        url: str | None = None,
        device: Device | None = None,
        viewport_width: float | None = None,
        country: str | None = None,
        is_returning: bool = False,
        attributes: Mapping[str, Any] | None = None,
        referrer: str | None = None,
    ) -> Variant | None:
        """The visitor's variant, or None (not live, unknown, or excluded by targeting or traffic).

        Args:
            experiment_slug: the experiment's slug.
            visitor_id: the visitor's stable id (the snippet's ``seg_visitor_id`` to agree with it).
            url: the page URL; an experiment with URL rules excludes a visitor without one.
            device: ``desktop``, ``tablet`` or ``mobile``; else derived from ``viewport_width``.
            viewport_width: the viewport width in CSS pixels.
            country: ISO 3166-1 alpha-2; unknown (None) passes country targeting.
            is_returning: whether the visitor was seen before (the audience's visitor type).
            attributes: what the audience's attribute rules test.
            referrer: the page's referrer, for the referral source gate.
        """
        return self._variant(
            self._current(),
            experiment_slug,
            visitor_id,
            url,
            device,
            viewport_width,
            country,
            is_returning,
            attributes,
            referrer,
        )

    def is_enabled(self, flag_key: str, visitor_id: str) -> bool:
        """Whether the flag is on for the visitor (False when inactive or unknown)."""
        return self._enabled(self._current(), flag_key, visitor_id)

    def get_all_flags(self, visitor_id: str) -> dict[str, bool]:
        """Every active flag of the site, on or off for the visitor."""
        return self._all_flags(self._current(), visitor_id)


class AsyncSegmentlyClient(_Client):
    """The SDK for asyncio apps (Litestar, FastAPI, any ASGI server): :class:`SegmentlyClient` awaited.

    Use one instance per event loop. Arguments as :class:`SegmentlyClient`'s, with an
    ``httpx.AsyncBaseTransport``.
    """

    def __init__(
        self,
        api_key: str,
        base_url: str,
        *,
        refresh_seconds: float = 30,
        timeout: float = 5,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(api_key, base_url, refresh_seconds)
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport)
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connections; the client cannot fetch afterwards."""
        await self._http.aclose()

    async def refresh(self) -> bool:
        """Fetch the config now; see :meth:`SegmentlyClient.refresh`.

        Returns:
            True when a new config was loaded, False when the cached one is current (``304``).

        Raises:
            SegmentlyError: the server refused the key, is unreachable, or answered something else.
        """
        async with self._lock:
            return await self._fetch()

    async def _fetch(self) -> bool:
        try:
            try:
                response = await self._http.get(self._url, headers=self._request_headers())
            except httpx.HTTPError as exc:
                raise self._unreachable(exc) from exc
            return self._accept(response)
        finally:
            self._due = time.monotonic() + self.refresh_seconds

    async def _current(self) -> _Snapshot | None:
        if time.monotonic() >= self._due and not (self._lock.locked() and self._snapshot is not None):
            async with self._lock:
                if time.monotonic() >= self._due:
                    try:
                        await self._fetch()
                    except SegmentlyError as exc:
                        self._log_failure(exc)
        return self._snapshot

    async def get_variant(
        self,
        experiment_slug: str,
        visitor_id: str,
        *,
        url: str | None = None,
        device: Device | None = None,
        viewport_width: float | None = None,
        country: str | None = None,
        is_returning: bool = False,
        attributes: Mapping[str, Any] | None = None,
        referrer: str | None = None,
    ) -> Variant | None:
        """The visitor's variant, or None; see :meth:`SegmentlyClient.get_variant`.

        Args:
            experiment_slug: the experiment's slug.
            visitor_id: the visitor's stable id.
            url: the page URL.
            device: ``desktop``, ``tablet`` or ``mobile``.
            viewport_width: the viewport width in CSS pixels.
            country: ISO 3166-1 alpha-2.
            is_returning: whether the visitor was seen before.
            attributes: what the audience's attribute rules test.
            referrer: the page's referrer.
        """
        return self._variant(
            await self._current(),
            experiment_slug,
            visitor_id,
            url,
            device,
            viewport_width,
            country,
            is_returning,
            attributes,
            referrer,
        )

    async def is_enabled(self, flag_key: str, visitor_id: str) -> bool:
        """Whether the flag is on for the visitor (False when inactive or unknown)."""
        return self._enabled(await self._current(), flag_key, visitor_id)

    async def get_all_flags(self, visitor_id: str) -> dict[str, bool]:
        """Every active flag of the site, on or off for the visitor."""
        return self._all_flags(await self._current(), visitor_id)
