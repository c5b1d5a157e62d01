"""Rate limits per client IP (or any key) by named bucket, on Litestar's rate-limit middleware and stores.

Litestar's ``RateLimitMiddleware`` keeps, per client, a JSON list of every timestamp in the window
(6,000 ints per request on the public bucket), reads then writes it under a per-process lock (two
nodes sharing Redis both read 19 and both write 20), keys every instance ``RateLimitMiddleware::<ip>``
(all buckets would share one count) and sends no ``Retry-After``. So the bucket middleware keeps its
config, opt-key exclusion and headers but counts with one O(1) fixed-window counter per key: a
``MemoryStore`` entry by default, an atomic ``INCR`` in the ``RedisStore``'s namespace with Redis.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeAlias, cast

from litestar.datastructures import MutableScopeHeaders
from litestar.di import NamedDependency, Provide
from litestar.exceptions import ImproperlyConfiguredException, TooManyRequestsException
from litestar.middleware.base import DefineMiddleware
from litestar.middleware.rate_limit import (
    DURATION_VALUES,
    DurationUnit,
    RateLimitConfig,
    RateLimitMiddleware,
)
from litestar.plugins import InitPlugin
from litestar.stores.base import StorageObject
from litestar.stores.memory import MemoryStore
from litestar.stores.redis import RedisStore
from redis.asyncio import Redis
from redis.exceptions import NoScriptError, RedisError

from segmently.settings import SettingsError

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.config.app import AppConfig
    from litestar.connection import Request
    from litestar.stores.base import Store
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("segmently.http.ratelimit")

ENV_PREFIX: Final = "SEGMENTLY_RATE_LIMIT_"
TRUSTED_PROXIES_ENV: Final = "SEGMENTLY_TRUSTED_PROXIES"
COUNTED: Final = "segmently.counted"
"""ASGI scope key: ``(bucket, key, usage)`` of a hit already counted before the middleware ran
(the events lane counts its requests itself and hands the ones it does not serve to the framework);
the middleware answers from it instead of counting the same request twice."""
STATE_KEY: Final = "segmently_rate_limits"
EXEMPT_OPT: Final = "exclude_from_rate_limit"
"""Route ``opt`` key that skips bucket middleware attached higher up (router, controller)."""

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)\s*$", re.IGNORECASE)
_SWEEP_SECONDS: Final = 60.0
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class Rate:
    """At most ``limit`` requests per ``unit`` (a fixed window starting at the first request)."""

    limit: int
    unit: DurationUnit

    @property
    def window(self) -> int:
        """The window in seconds."""
        return DURATION_VALUES[self.unit]

    def __str__(self) -> str:
        return f"{self.limit}/{self.unit}"

    @classmethod
    def parse(cls, text: str, *, variable: str = "rate") -> Rate:
        """Read ``N/second|minute|hour|day``.

        Raises:
            SettingsError: (a ``ValueError``) naming ``variable`` when the text is not a rate.
        """
        match = _RATE.match(text)
        if not match or int(match.group(1)) < 1:
            raise SettingsError(
                f"{variable}={text!r} is not a rate like 30/minute (N ≥ 1 per second|minute|hour|day)"
            )
        return cls(int(match.group(1)), match.group(2).lower())  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Bucket:
    """A named limit.

    Attributes:
        name: What handlers ask for (``limits.middleware("login")``); env ``SEGMENTLY_RATE_LIMIT_<NAME>``.
        rate: The default rate.
        per_route: Count each route it is attached to separately (the public snippet endpoints).
        headers: Send ``RateLimit-*`` headers on allowed responses too (always on a 429).
    """

    name: str
    rate: Rate
    per_route: bool = False
    headers: bool = True


DEFAULT_BUCKETS: Final = (
    Bucket("signup", Rate(20, "minute")),
    Bucket("login", Rate(20, "minute")),
    Bucket("login_account", Rate(20, "minute")),
    Bucket("password_reset", Rate(20, "minute")),
    Bucket("public", Rate(6000, "minute"), per_route=True, headers=False),
)


@dataclass(frozen=True, slots=True)
class Usage:
    """One counted hit: where the key stands in its bucket's current window."""

    bucket: Bucket
    count: int
    reset_after: int
    """Seconds until the window restarts (at least 1)."""

    @property
    def allowed(self) -> bool:
        """Whether this hit was within the limit."""
        return self.count <= self.bucket.rate.limit

    @property
    def remaining(self) -> int:
        """Hits left in this window."""
        return max(0, self.bucket.rate.limit - self.count)

    def headers(self) -> dict[str, str]:
        """The IETF draft ``RateLimit-*`` headers, under the names Litestar uses."""
        rate = self.bucket.rate
        return {
            "RateLimit-Policy": f"{rate.limit}; w={rate.window}",
            "RateLimit-Limit": str(rate.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_after),
        }


class RateLimitExceeded(TooManyRequestsException):
    """A 429 in the kernel error shape, with ``Retry-After`` and ``RateLimit-*`` headers."""

    def __init__(self, usage: Usage) -> None:
        rate = usage.bucket.rate
        super().__init__(
            detail=f"Too many requests (at most {rate.limit} per {rate.unit}); "
            f"try again in {usage.reset_after} seconds",
            headers={"Retry-After": str(usage.reset_after), **usage.headers()},
        )
        self.usage = usage


class _Counter(Protocol):
    @property
    def store(self) -> Store:
        """Where the counts live."""
        ...

    async def increment(self, key: str, window: int) -> tuple[int, float]:
        """Count one hit; the count in the current window and the seconds left in it."""
        ...

    async def close(self) -> None: ...


class CountingMemoryStore(MemoryStore):
    """Litestar's ``MemoryStore`` with a synchronous, hence atomic, ``increment``.

    Going through ``get`` then ``set`` would take its lock twice and yield to the event loop
    each time (+30 µs a request); nothing awaits between the read and the write here.
    The value is the count as ASCII digits; the window's end is the entry's expiry.
    """

    __slots__ = ("_next_sweep",)

    def __init__(self) -> None:
        super().__init__()
        self._next_sweep = time.monotonic() + _SWEEP_SECONDS

    def increment(self, key: str, window: int) -> tuple[int, float]:
        """Count one hit; the count in the current window and the seconds left in it."""
        now = datetime.now(tz=UTC)
        entry = self._store.get(key)
        if entry is None or entry.expires_at is None or entry.expires_at <= now:
            entry = StorageObject(expires_at=now + timedelta(seconds=window), data=b"0")
            self._store[key] = entry
        count = int(entry.data) + 1
        entry.data = b"%d" % count
        left = (entry.expires_at - now).total_seconds() if entry.expires_at else float(window)
        if time.monotonic() >= self._next_sweep:  # the store only drops expired keys when they are read
            self._next_sweep = time.monotonic() + _SWEEP_SECONDS
            for stale in [k for k, v in self._store.items() if v.expires_at and v.expires_at <= now]:
                del self._store[stale]
        return count, left


class _MemoryCounter:
    """Per-process counts."""

    def __init__(self) -> None:
        self.store = CountingMemoryStore()

    async def increment(self, key: str, window: int) -> tuple[int, float]:
        return self.store.increment(key, window)

    async def close(self) -> None:
        return None


_INCREMENT = b"""
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {count, ttl}
"""


class _RedisCounter:
    """Counts shared by every node: one atomic round trip, keys in the ``RedisStore`` namespace."""

    def __init__(self, url: str, namespace: str) -> None:
        self.redis: Redis = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        self.store = RedisStore(self.redis, namespace=namespace)
        self._prefix = f"{namespace}:"  # the key RedisStore.get/delete use, so reset() and delete_all() apply
        self._sha = hashlib.sha1(_INCREMENT, usedforsecurity=False).hexdigest()

    async def increment(self, key: str, window: int) -> tuple[int, float]:
        keys_and_args = (self._prefix + key, window * 1000)
        try:  # EVALSHA directly: redis-py's Script wrapper adds ~20 µs a call
            count, ttl_ms = await self.redis.evalsha(self._sha, 1, *keys_and_args)
        except NoScriptError:  # first call on this Redis (or after SCRIPT FLUSH); EVAL caches it
            count, ttl_ms = await self.redis.eval(_INCREMENT.decode(), 1, *keys_and_args)
        return int(count), int(ttl_ms) / 1000

    async def close(self) -> None:
        await self.redis.aclose()


def parse_trusted_proxies(text: str, *, variable: str = TRUSTED_PROXIES_ENV) -> tuple[_Network, ...]:
    """Read comma-separated IPs and CIDRs.

    Raises:
        SettingsError: (a ``ValueError``) naming ``variable`` and the bad entry.
    """
    networks = []
    for item in (part.strip() for part in text.split(",")):
        if item:
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise SettingsError(f"{variable}: {item!r} is not an IP address or CIDR network") from None
    return tuple(networks)


def _subject(ip: str) -> str:
    """What one client is counted as: its IPv4 address, or its IPv6 /64 (one host's usual allocation)."""
    if ":" not in ip:
        return ip
    try:
        address = ipaddress.IPv6Address(ip)
    except ValueError:
        return ip
    if address.ipv4_mapped:
        return str(address.ipv4_mapped)
    return str(ipaddress.IPv6Network((address, 64), strict=False))


class RateLimits(InitPlugin):
    """Named buckets counted per client IP (middleware) or per any key (:meth:`hit`).

    Build one per app and install it as a plugin, ``Litestar(plugins=[limits])``: it then sits in
    the app's state (:meth:`of`), is injected as the ``rate_limits`` dependency, serves
    :func:`rate_limit` middleware and closes on shutdown.

    Args:
        buckets: The named limits.
        redis_url: Count in Redis (shared by every node) instead of this process's memory.
        namespace: Redis key prefix (keys are ``<namespace>:<bucket>:<hash>``).
        trusted_proxies: Peers whose ``X-Forwarded-For`` is believed.
    """

    def __init__(
        self,
        buckets: Iterable[Bucket] = DEFAULT_BUCKETS,
        *,
        redis_url: str | None = None,
        namespace: str = "segmently_ratelimit",
        trusted_proxies: Iterable[_Network] = (),
    ) -> None:
        self.buckets = {bucket.name: bucket for bucket in buckets}
        self.trusted_proxies = tuple(trusted_proxies)
        self._counter: _Counter = _RedisCounter(redis_url, namespace) if redis_url else _MemoryCounter()
        self._next_warning = 0.0
        self._forwarded_ignored = False

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        redis_url: str | None = None,
        namespace: str = "segmently_ratelimit",
        buckets: Iterable[Bucket] = DEFAULT_BUCKETS,
    ) -> RateLimits:
        """``buckets`` with rates from ``SEGMENTLY_RATE_LIMIT_<BUCKET>`` and ``SEGMENTLY_TRUSTED_PROXIES``.

        ``environ`` defaults to ``os.environ``; pass ``settings.redis_url`` as ``redis_url``.

        Raises:
            SettingsError: (a ``ValueError``) naming the variable: a malformed rate or proxy, or a
                ``SEGMENTLY_RATE_LIMIT_*`` variable for a bucket that does not exist (a typo).
        """
        environ = os.environ if environ is None else environ
        known = {ENV_PREFIX + bucket.name.upper(): bucket for bucket in buckets}
        for variable in environ:
            if variable.startswith(ENV_PREFIX) and variable not in known:
                raise SettingsError(f"{variable} names no rate limit; known: {', '.join(known)}")
        resolved = []
        for variable, bucket in known.items():
            value = environ.get(variable, "").strip()
            rate = Rate.parse(value, variable=variable) if value else bucket.rate
            resolved.append(Bucket(bucket.name, rate, bucket.per_route, bucket.headers))
        proxies = parse_trusted_proxies(environ.get(TRUSTED_PROXIES_ENV, ""))
        return cls(resolved, redis_url=redis_url, namespace=namespace, trusted_proxies=proxies)

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        """Install on an app: state, the ``rate_limits`` dependency, closing on shutdown."""
        app_config.state[STATE_KEY] = self
        app_config.dependencies.setdefault("rate_limits", Provide(self._provide, sync_to_thread=False))
        app_config.on_shutdown.append(self.close)
        return app_config

    @classmethod
    def of(cls, app: Litestar) -> RateLimits:
        """The instance installed on ``app`` (e.g. ``RateLimits.of(request.app)``).

        Raises:
            ImproperlyConfiguredException: None is installed.
        """
        limits = app.state.get(STATE_KEY)
        if not isinstance(limits, RateLimits):
            raise ImproperlyConfiguredException("no RateLimits installed: Litestar(plugins=[limits])")
        return limits

    @property
    def store(self) -> Store:
        """The Litestar store holding the counts (``MemoryStore`` or a namespaced ``RedisStore``)."""
        return self._counter.store

    def bucket(self, name: str) -> Bucket:
        """The bucket called ``name``.

        Raises:
            KeyError: There is no such bucket (so a typo fails when routes are declared).
        """
        try:
            return self.buckets[name]
        except KeyError:
            raise KeyError(f"no rate-limit bucket {name!r}; known: {', '.join(self.buckets)}") from None

    def middleware(self, bucket: str) -> DefineMiddleware:
        """Middleware counting each request against ``bucket`` per client IP; put it on a handler or router.

        Example: ``@post("/api/v1/auth/login", middleware=[limits.middleware("login")])``.
        """
        chosen = self.bucket(bucket)
        config = BucketRateLimitConfig(
            rate_limit=(chosen.rate.unit, chosen.rate.limit),
            exclude_opt_key=EXEMPT_OPT,
            identifier_for_request=self._identify,
            set_rate_limit_headers=chosen.headers,
            limits=self,
            bucket=chosen.name,
        )
        return config.middleware

    def client_ip(self, scope: Scope) -> str:
        """The client's IP: the socket peer, or from ``X-Forwarded-For`` when the peer is a trusted proxy.

        The header is read right to left, skipping trusted proxies: the first other address is the
        client (entries further left were written by the client itself and are not believed).
        """
        client = scope.get("client")
        peer = client[0] if client else "unknown"
        if not self.trusted_proxies or not self._trusted(peer):
            if not self._forwarded_ignored:
                self._warn_if_forwarded(scope, peer)
            return peer
        hops = [
            hop.strip()
            for name, value in scope["headers"]
            if name.lower() == b"x-forwarded-for"
            for hop in value.decode("latin-1").split(",")
        ]
        found = peer
        for hop in reversed(hops):
            try:
                address = ipaddress.ip_address(hop)
            except ValueError:
                break  # garbage from further left; the last proxy we believe saw `found`
            found = str(address)
            if not self._trusted_address(address):
                break
        return found

    async def consume(self, bucket: str, key: str) -> Usage:
        """Count one hit of ``key`` (hashed before storing) in ``bucket``; never raises for the limit.

        When Redis is unreachable the hit is allowed (logged at most once a minute): an outage of
        the counter store must not take logins and the snippet down with it.
        """
        chosen = self.bucket(bucket)
        digest = hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
        try:
            count, left = await self._counter.increment(f"{chosen.name}:{digest}", chosen.rate.window)
        except (RedisError, OSError) as exc:
            if time.monotonic() >= self._next_warning:
                self._next_warning = time.monotonic() + 60
                log.warning("rate-limit store unreachable, allowing requests: %s", exc)
            return Usage(chosen, 0, chosen.rate.window)
        return Usage(chosen, count, max(1, math.ceil(left)))

    async def hit(self, bucket: str, key: str) -> Usage:
        """Count one hit of ``key`` in ``bucket`` (e.g. ``("login_account", email.lower())``).

        Raises:
            RateLimitExceeded: The 429 (kernel error body, ``Retry-After``) once over the limit.
        """
        usage = await self.consume(bucket, key)
        if not usage.allowed:
            raise RateLimitExceeded(usage)
        return usage

    async def reset(self, bucket: str, key: str) -> None:
        """Forget the hits of ``key`` in ``bucket`` (e.g. after a successful login)."""
        digest = hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
        await self.store.delete(f"{self.bucket(bucket).name}:{digest}")

    async def close(self) -> None:
        """Release the Redis connections (done on shutdown when installed as a plugin)."""
        await self._counter.close()

    def subject(self, scope: Scope) -> str:
        """What the middleware counts a request as: :meth:`client_ip`, IPv6 by its /64."""
        return _subject(self.client_ip(scope))

    def _identify(self, request: Request[Any, Any, Any]) -> str:
        return self.subject(request.scope)

    def _provide(self) -> RateLimits:
        return self

    def _warn_if_forwarded(self, scope: Scope, peer: str) -> None:
        # once: behind a proxy that is not listed, every client is counted as that proxy
        if any(name.lower() == b"x-forwarded-for" for name, _ in scope["headers"]):
            self._forwarded_ignored = True
            log.warning(
                "X-Forwarded-For from %s ignored: not in %s; if it is your reverse proxy, list it there",
                peer,
                TRUSTED_PROXIES_ENV,
            )

    def _trusted(self, peer: str) -> bool:
        try:
            return self._trusted_address(ipaddress.ip_address(peer))
        except ValueError:
            return False

    def _trusted_address(self, address: _Address) -> bool:
        return any(address in network for network in self.trusted_proxies)


AppRateLimits: TypeAlias = NamedDependency[RateLimits]
"""The app's installed :class:`RateLimits`; declare it as ``rate_limits: AppRateLimits``."""


def rate_limit(bucket: str) -> DefineMiddleware:
    """Middleware counting each request in ``bucket`` of the app's installed :class:`RateLimits`.

    For handlers declared at import time, before any app exists:
    ``@post("/api/v1/auth/login", middleware=[rate_limit("login")])``.

    Raises:
        KeyError: ``bucket`` is not one of :data:`DEFAULT_BUCKETS` (use
            ``limits.middleware()`` for buckets of your own).
    """
    chosen = {b.name: b for b in DEFAULT_BUCKETS}.get(bucket)
    if chosen is None:
        known = ", ".join(b.name for b in DEFAULT_BUCKETS)
        raise KeyError(f"no rate-limit bucket {bucket!r}; known: {known}")
    return BucketRateLimitConfig(
        rate_limit=(chosen.rate.unit, chosen.rate.limit),  # the default; the installed RateLimits decides
        exclude_opt_key=EXEMPT_OPT,
        identifier_for_request=_installed_identity,
        set_rate_limit_headers=chosen.headers,
        bucket=bucket,
    ).middleware


def _installed_identity(request: Request[Any, Any, Any]) -> str:
    return RateLimits.of(request.app)._identify(request)


class BucketRateLimitMiddleware(RateLimitMiddleware):
    """Litestar's rate-limit middleware counting in a :class:`RateLimits` bucket (see the module doc)."""

    def __init__(self, app: ASGIApp, config: BucketRateLimitConfig) -> None:
        super().__init__(app, config)
        self.bucket_name = config.bucket
        self.limits = config.limits  # None: the app's installed one, found on the first request
        self.bucket = config.limits.bucket(config.bucket) if config.limits else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Count the request; raise the 429 when over the limit."""
        app = scope["litestar_app"]
        if self.limits is None or self.bucket is None:  # one app per middleware instance
            self.limits = RateLimits.of(app)
            self.bucket = self.limits.bucket(self.bucket_name)
        request: Request[Any, Any, Any] = app.request_class(scope)
        if await self.should_check_request(request):
            key = self.get_identifier_for_request(request)
            if self.bucket.per_route:
                key = f"{scope.get('path_template', scope['path'])} {key}"
            counted = cast("dict[str, Any]", scope).pop(COUNTED, None)
            if counted is not None and counted[:2] == (self.bucket.name, key):
                usage = counted[2]
            else:
                usage = await self.limits.consume(self.bucket.name, key)
            if not usage.allowed:
                raise RateLimitExceeded(usage)
            if self.bucket.headers:
                send = _with_headers(send, usage.headers())
        await self.app(scope, receive, send)


def _with_headers(send: Send, headers: dict[str, str]) -> Send:
    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            message.setdefault("headers", [])
            target = MutableScopeHeaders(message)
            for name, value in headers.items():
                if name not in target:  # a 429 from an inner limit (hit()) describes that limit
                    target[name] = value
        await send(message)

    return send_with_headers


@dataclass
class BucketRateLimitConfig(RateLimitConfig):
    """``RateLimitConfig`` naming the :class:`RateLimits` and bucket that count."""

    limits: RateLimits | None = None
    bucket: str = ""
    middleware_class: type[RateLimitMiddleware] = field(default=BucketRateLimitMiddleware)
