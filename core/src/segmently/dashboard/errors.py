"""How a page answers what the API answers with an error body.

- 401 (no session, or it ended): back to ``/login?next=<this page>``, the stale cookie dropped;
  an htmx request gets ``HX-Redirect`` so the whole page goes, not the fragment.
- Plan limits and missing features: a page with the upgrade message.
- Anything else (403, 404, 429…): an error page with the API's own message and status.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException
from litestar.response import Template
from litestar.types import ExceptionHandlersMap

from segmently.dashboard.frame import csrf_token, login_url, redirect, signed_out
from segmently.domain.accounts.auth import SESSION_COOKIE
from segmently.tiers.limits import FeatureNotIncluded, LimitExceeded

log = logging.getLogger(__name__)


def _to_login(request: Request[Any, Any, Any], exc: NotAuthorizedException) -> Response[Any]:
    target = None
    if request.method == "GET" and not request.headers.get("hx-request"):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    url = login_url(target)
    response: Response[Any]
    if request.headers.get("hx-request"):
        response = Response(b"", status_code=200, headers={"HX-Redirect": url})
    else:
        response = redirect(url)
    if SESSION_COOKIE in request.cookies:
        signed_out(response)
    return response


def _error_page(
    request: Request[Any, Any, Any],
    status_code: int,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
) -> Template:
    return Template(
        template_name="error.html",
        context={"csrf_token": csrf_token(request), "title": title, "detail": detail},
        status_code=status_code,
        headers=headers,
    )


TITLES = {
    400: "This request is not valid",
    402: "Upgrade needed",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed",
    409: "Conflict",
    429: "Too many attempts",
}


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any] | Template:
    if exc.status_code == 401:
        return _to_login(request, NotAuthorizedException(exc.detail))
    title = TITLES.get(exc.status_code, "Something went wrong")
    return _error_page(request, exc.status_code, title, exc.detail, dict(exc.headers or {}))


def _plan_error(request: Request[Any, Any, Any], exc: LimitExceeded | FeatureNotIncluded) -> Template:
    return _error_page(request, exc.status_code, TITLES[402], exc.message)


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Template:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _error_page(request, 500, "Something went wrong", "The server could not show this page.")


PAGE_ERRORS: ExceptionHandlersMap = {
    HTTPException: _http_error,
    LimitExceeded: _plan_error,
    FeatureNotIncluded: _plan_error,
    Exception: _unexpected,
}
"""Exception handlers of every dashboard controller."""
