"""The visitor's country: a trusted proxy header, else the self-hoster's MaxMind database."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import geoip2.database
import geoip2.errors
from litestar.connection import ASGIConnection

log = logging.getLogger(__name__)


def _iso(value: str | None) -> str | None:
    value = (value or "").strip().upper()
    return value if len(value) == 2 and value.isalpha() and value != "XX" else None


class Countries:
    """Resolves a request's country (ISO 3166-1 alpha-2), or None when unknown.

    Args:
        header: A header a trusted proxy sets (``CF-IPCountry``); wins when present.
        database: A MaxMind GeoIP2/GeoLite2 Country (or City) database, read with ``geoip2``.
    """

    def __init__(self, header: str | None = None, database: Path | None = None) -> None:
        self.header = header
        self._reader = geoip2.database.Reader(str(database)) if database else None

    @property
    def varies_by_header(self) -> bool:
        """Whether responses that include the country must ``Vary`` on the header."""
        return self.header is not None

    def of(self, connection: ASGIConnection[Any, Any, Any, Any], client_ip: str | None) -> str | None:
        """The country of the request; the header first, then the client IP in the database."""
        if self.header:
            from_header = _iso(connection.headers.get(self.header))
            if from_header:
                return from_header
        if self._reader is None or not client_ip:
            return None
        try:
            return _iso(self._reader.country(client_ip).country.iso_code)
        except (geoip2.errors.AddressNotFoundError, ValueError):
            return None

    def close(self) -> None:
        """Close the database file."""
        if self._reader is not None:
            self._reader.close()
