"""Hostnames as a site's settings store them and the snippet compares them (cross-domain lists)."""

from __future__ import annotations

import re

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")


def bare_hostname(raw: str) -> str | None:
    """``raw`` trimmed, lower-cased and without a trailing dot; None when that is not a hostname."""
    host = raw.strip().lower().rstrip(".")
    return host if _HOSTNAME.match(host) else None
