"""Browser-facing protection: security headers, CSRF for cookie sessions, and the rate limits.

Wiring (see docs/security.md)::

    Litestar(
        ...,
        plugins=[RateLimits.from_env(redis_url=settings.redis_url)],
        before_send=[security_headers(settings.base_url)],
        middleware=[csrf_middleware(settings.secret_key, secure=settings.base_url.startswith("https"))],
    )

    @post("/api/v1/auth/login", middleware=[rate_limit("login")])
    async def login(data: JSONBody[LoginIn], rate_limits: AppRateLimits) -> ...:
        await rate_limits.hit("login_account", data.email.lower())

    @get("/api/public/config", middleware=[rate_limit("public")], opt=PUBLIC_ROUTE_OPT)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from litestar.config.csrf import CSRFConfig
from litestar.enums import ScopeType
from litestar.middleware.base import DefineMiddleware
from litestar.middleware.csrf import CSRFMiddleware

from segmently.http.ratelimit import (
    DEFAULT_BUCKETS,
    EXEMPT_OPT,
    AppRateLimits,
    Bucket,
    Rate,
    RateLimitExceeded,
    RateLimits,
    Usage,
    rate_limit,
)

if TYPE_CHECKING:
    from litestar.types import HTTPScope, Message, Receive, Scope, Send

__all__ = (
    "CSP_OPT",
    "CSRF_COOKIE",
    "CSRF_EXEMPT_OPT",
    "CSRF_HEADER",
    "DEFAULT_BUCKETS",
    "DEFAULT_CSP",
    "EMBEDDABLE_OPT",
    "PUBLIC_ROUTE_OPT",
    "RATE_LIMIT_EXEMPT_OPT",
    "SESSION_COOKIE",
    "AppRateLimits",
    "Bucket",
    "Rate",
    "RateLimitExceeded",
    "RateLimits",
    "SecurityHeaders",
    "SessionCSRFMiddleware",
    "Usage",
    "csrf_config",
    "csrf_middleware",
    "rate_limit",
    "security_headers",
)

SESSION_COOKIE: Final = "segmently_session"
CSRF_COOKIE: Final = "segmently_csrf"
CSRF_HEADER: Final = "X-CSRF-Token"
EMBEDDABLE_OPT: Final = "embeddable"
"""Route ``opt`` key: the response may be framed or embedded cross-origin (no ``X-Frame-Options``)."""
CSP_OPT: Final = "csp"
"""Route ``opt`` key: a ``Content-Security-Policy`` replacing the default one, or ``False`` for none."""
CSRF_EXEMPT_OPT: Final = "exclude_from_csrf"  # Litestar's CSRFConfig.exclude_from_csrf_key
RATE_LIMIT_EXEMPT_OPT: Final = EXEMPT_OPT
PUBLIC_ROUTE_OPT: Final[Mapping[str, Any]] = MappingProxyType({EMBEDDABLE_OPT: True, CSRF_EXEMPT_OPT: True})
"""``opt`` for the snippet's endpoints and ``/segmently.js``: embeddable and never CSRF-checked."""

DEFAULT_CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)
_SESSION_COOKIE: Final = SESSION_COOKIE.encode()


class SecurityHeaders:
    """A ``before_send`` hook adding security headers to every response, errors and 404s included.

    Headers a handler already set are left alone, so one route can choose its own.

    Args:
        base_url: The server's public URL; ``Strict-Transport-Security`` only when it is https.
        csp: The ``Content-Security-Policy`` of HTML responses.
        csp_exclude: Path prefixes served without a CSP (the OpenAPI viewer loads its script
            from a CDN).
        hsts_max_age: Seconds browsers remember to use https only.
    """

    def __init__(
        self,
        base_url: str,
        *,
        csp: str = DEFAULT_CSP,
        csp_exclude: Sequence[str] = ("/schema",),
        hsts_max_age: int = 31_536_000,
    ) -> None:
        self.csp = csp
        self.csp_exclude = tuple(csp_exclude)
        self.hsts = f"max-age={hsts_max_age}" if urlsplit(base_url).scheme == "https" else None

    async def __call__(self, message: Message, scope: Scope) -> None:
        """Add the headers to the response start."""
        if message["type"] != "http.response.start":
            return
        headers = list(message.get("headers") or ())
        present = {name.lower() for name, _ in headers}
        handler = scope.get("route_handler")
        opt: dict[str, Any] = handler.opt if handler is not None else {}
        embeddable = bool(opt.get(EMBEDDABLE_OPT))

        def add(name: bytes, value: str) -> None:
            if name not in present:
                headers.append((name, value.encode("latin-1")))

        add(b"x-content-type-options", "nosniff")
        add(b"referrer-policy", "strict-origin-when-cross-origin")
        if not embeddable:
            add(b"x-frame-options", "DENY")
        if self.hsts:
            add(b"strict-transport-security", self.hsts)
        content_type = next((v for n, v in headers if n.lower() == b"content-type"), b"")
        if content_type.startswith(b"text/html") and not scope["path"].startswith(self.csp_exclude):
            csp = opt.get(CSP_OPT, self.csp)
            if csp and embeddable:
                csp = "; ".join(d for d in csp.split("; ") if not d.startswith("frame-ancestors"))
            if csp:
                add(b"content-security-policy", csp)
        message["headers"] = headers


def security_headers(
    base_url: str,
    *,
    csp: str = DEFAULT_CSP,
    csp_exclude: Sequence[str] = ("/schema",),
    hsts_max_age: int = 31_536_000,
) -> SecurityHeaders:
    """The security-headers hook for ``Litestar(before_send=[...])``; see :class:`SecurityHeaders`."""
    return SecurityHeaders(base_url, csp=csp, csp_exclude=csp_exclude, hsts_max_age=hsts_max_age)


def csrf_config(secret: str, *, secure: bool = False, exclude: str | list[str] | None = None) -> CSRFConfig:
    """Litestar's CSRF config for dashboard sessions: cookie ``segmently_csrf``, header ``X-CSRF-Token``.

    Give it to :func:`csrf_middleware`, not to ``Litestar(csrf_config=...)``: Litestar's own
    middleware would demand the token from API clients too.

    Args:
        secret: Signs the tokens (the server's secret key).
        secure: Mark the cookie ``Secure`` (when the base URL is https).
        exclude: Path patterns never checked.
    """
    return CSRFConfig(
        secret=secret,
        cookie_name=CSRF_COOKIE,
        header_name=CSRF_HEADER.lower(),
        cookie_secure=secure,
        cookie_httponly=False,  # page scripts (htmx) copy it into the header
        cookie_samesite="lax",
        exclude=exclude,
        exclude_from_csrf_key=CSRF_EXEMPT_OPT,
    )


class SessionCSRFMiddleware(CSRFMiddleware):
    """Litestar's CSRF middleware, applied only to what a browser's cookies can authenticate.

    - ``Authorization: Bearer <token>`` or ``X-Management-Key``: skipped; the kernel authenticates
      such a request by the header alone, and a cross-site page cannot send it without a CORS
      preflight.
    - The ``segmently_session`` cookie otherwise: checked on unsafe methods (Litestar issues the
      cookie on safe ones). This includes ``X-API-Key`` or non-Bearer ``Authorization`` headers
      sent alongside the cookie: the cookie is what authenticates those.
    - No session cookie: unsafe methods are not checked (nothing to forge); safe methods get the
      cookie unless they carry ``X-API-Key`` (snippet traffic).
    - Routes with ``opt={"exclude_from_csrf": True}`` or excluded paths: skipped.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Delegate to Litestar's check when the request is cookie-authenticated."""
        if scope["type"] == ScopeType.HTTP and not _cookie_authenticated(scope, self.config.safe_methods):
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def _cookie_authenticated(scope: HTTPScope, safe_methods: set[Any]) -> bool:
    session = api_key = False
    for raw_name, value in scope["headers"]:
        name = raw_name.lower()
        if name == b"authorization":
            scheme, _, token = value.partition(b" ")
            if scheme.lower() == b"bearer" and token.strip():
                return False
        elif name == b"x-management-key" and value.strip():
            return False
        elif name == b"x-api-key":
            api_key = bool(value.strip())
        elif name == b"cookie" and not session:
            session = any(part.split(b"=", 1)[0].strip() == _SESSION_COOKIE for part in value.split(b";"))
    if session:
        return True
    return not api_key and scope["method"] in safe_methods


def csrf_middleware(
    secret: str, *, secure: bool = False, exclude: str | list[str] | None = None
) -> DefineMiddleware:
    """:class:`SessionCSRFMiddleware` with :func:`csrf_config` for ``Litestar(middleware=[...])``."""
    return DefineMiddleware(SessionCSRFMiddleware, config=csrf_config(secret, secure=secure, exclude=exclude))
