"""The reusable helpers of ``segmently.http.idempotency``: fingerprints and If-Match parsing."""

from __future__ import annotations

import msgspec
import pytest
from litestar.exceptions import ValidationException

from segmently.http.idempotency import (
    PreconditionFailed,
    check_if_match,
    etag,
    fingerprint,
    idempotency_key,
    parse_if_match,
)


class Body(msgspec.Struct):
    key: str
    name: str
    rollout_percentage: float = 0.0


def test_fingerprint_ignores_formatting_but_not_content() -> None:
    a = fingerprint("post", "/api/v1/projects/p/flags", {"key": "k", "name": "N"})
    assert a == fingerprint("POST", "/api/v1/projects/p/flags", {"name": "N", "key": "k"})
    assert a != fingerprint("POST", "/api/v1/projects/p/flags", {"key": "k", "name": "M"})
    assert a != fingerprint("POST", "/api/v1/projects/q/flags", {"key": "k", "name": "N"})
    assert a != fingerprint("PUT", "/api/v1/projects/p/flags", {"key": "k", "name": "N"})
    # a decoded struct: an omitted default and the same value sent explicitly are one request
    assert fingerprint("POST", "/x", Body("k", "N")) == fingerprint("POST", "/x", Body("k", "N", 0.0))
    assert len(a) == 64


@pytest.mark.parametrize(
    ("header", "versions"),
    [
        (None, None),
        ("", None),
        ("*", None),
        ("3", {3}),
        ('"3"', {3}),
        ('W/"3"', {3}),
        (' "3" , W/"4"', {3, 4}),
    ],
)
def test_parse_if_match(header: str | None, versions: set[int] | None) -> None:
    assert parse_if_match(header) == versions


@pytest.mark.parametrize("header", ['"abc"', '"-1"', '"1.5"', '"٣"', "3, x"])
def test_parse_if_match_refuses_what_is_not_a_version(header: str) -> None:
    with pytest.raises(ValidationException):
        parse_if_match(header)


def test_check_if_match() -> None:
    check_if_match(None, 5)
    check_if_match('"5"', 5)
    with pytest.raises(PreconditionFailed) as failed:
        check_if_match('"4"', 5, "This flag")
    assert failed.value.status_code == 412 and failed.value.current_version == 5
    assert failed.value.detail.startswith("This flag was changed by someone else")
    assert etag(5) == '"5"'


def test_idempotency_key() -> None:
    assert idempotency_key(None) is None
    assert idempotency_key(" abc ") == "abc"
    for bad in ("", "   ", "x" * 201, "a\x00b"):
        with pytest.raises(ValidationException):
            idempotency_key(bad)
