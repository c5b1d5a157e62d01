"""One error shape for every response: ``{"status_code", "detail", "errors": [{"field", "message"}]}``."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap

from segmently.plugins.entitlements import Denied
from segmently.tiers.limits import FeatureNotIncluded, LimitExceeded

log = logging.getLogger("segmently.http")
_UNKNOWN_FIELD = re.compile(r"unknown field `(?P<name>[^`]+)`")
_MSGSPEC_PATH = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_MISSING_FIELD = re.compile(r"^Object missing required field `(?P<name>[^`]+)`$")


class FieldError(msgspec.Struct, frozen=True):
    """What is wrong with one input field (dotted path, list indexes in brackets)."""

    field: str
    message: str


class ErrorBody(msgspec.Struct, kw_only=True):
    """Body of every 4xx and 5xx response."""

    status_code: int
    detail: str
    errors: list[FieldError] = []


def field_errors(errors: Iterable[tuple[str, str]], detail: str = "Invalid input") -> ValidationException:
    """A 400 naming each bad field; raise it from a service or controller."""
    return ValidationException(detail=detail, extra=[{"key": f, "message": m} for f, m in errors])


def field_error(field: str, message: str) -> ValidationException:
    """A 400 naming one bad field."""
    return field_errors([(field, message)], detail=f"{field}: {message}")


def from_msgspec(exc: msgspec.ValidationError, prefix: str = "") -> ValidationException:
    """Turn msgspec's ``"Expected int - at `$.a[0].b`"`` into a field error on ``a[0].b``."""
    match = _MSGSPEC_PATH.match(str(exc))
    message = match.group("message") if match else str(exc)
    path = (match.group("path") or "").lstrip(".") if match else ""
    missing = _MISSING_FIELD.match(message)
    if missing:  # name the missing field, not the object that lacks it
        path, message = ".".join(p for p in (path, missing.group("name")) if p), "is required"
    field = ".".join(p for p in (prefix, path) if p) or "body"
    return field_error(field, message)


def _errors_of(extra: Any) -> list[FieldError]:
    items = extra if isinstance(extra, list) else [extra] if isinstance(extra, dict) else []
    out = []
    for item in items:
        if isinstance(item, dict) and "message" in item:
            field, message = str(item.get("key") or "body"), str(item["message"])
            unknown = _UNKNOWN_FIELD.search(message)
            if unknown and field in ("data", "body"):  # name the offending field, not the whole body
                field = unknown.group("name")
            out.append(FieldError(field=field, message=message))
    return out


def _too_large(request: Request[Any, Any, Any]) -> ErrorBody:
    """A 413 names the body and the route's limit (Litestar's own says only "Request Entity Too Large")."""
    limit = request.route_handler.resolve_request_max_body_size()
    message = f"is larger than the limit of {limit:,} bytes" if limit else "is too large"
    return ErrorBody(
        status_code=413, detail=f"body: {message}", errors=[FieldError(field="body", message=message)]
    )


def _http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if exc.status_code == 413 and not exc.extra:
        return Response(_too_large(request), status_code=413, headers=exc.headers or None)
    body = ErrorBody(status_code=exc.status_code, detail=exc.detail, errors=_errors_of(exc.extra))
    if exc.status_code == 400 and body.errors and exc.detail.startswith("Validation failed for"):
        body.detail = "; ".join(f"{e.field}: {e.message}" for e in body.errors)
    return Response(body, status_code=exc.status_code, headers=exc.headers or None)


def _denied(request: Request[Any, Any, Any], exc: Denied) -> Response[ErrorBody]:
    return Response(ErrorBody(status_code=exc.status_code, detail=exc.detail), status_code=exc.status_code)


def _plan(request: Request[Any, Any, Any], exc: LimitExceeded | FeatureNotIncluded) -> Response[ErrorBody]:
    return Response(ErrorBody(status_code=exc.status_code, detail=exc.message), status_code=exc.status_code)


def _validation(request: Request[Any, Any, Any], exc: msgspec.ValidationError) -> Response[ErrorBody]:
    return _http_exception(request, from_msgspec(exc))


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return Response(ErrorBody(status_code=500, detail="Internal server error"), status_code=500)


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    HTTPException: _http_exception,
    Denied: _denied,
    LimitExceeded: _plan,
    FeatureNotIncluded: _plan,
    msgspec.ValidationError: _validation,
    Exception: _unexpected,
}
