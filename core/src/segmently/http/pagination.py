"""Keyset pagination: ``?limit=&cursor=`` in, ``{"items", "next_cursor"}`` out."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

import msgspec
from sqlalchemy import Select, literal, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from segmently.http.errors import field_error

T = TypeVar("T")
DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class Page(msgspec.Struct, Generic[T], kw_only=True):
    """One page of a list; pass ``next_cursor`` back as ``cursor`` for the next one."""

    items: list[T]
    next_cursor: str | None = None


def encode_cursor(values: Sequence[Any]) -> str:
    """An opaque cursor holding the sort key of the last item."""
    raw = msgspec.json.encode(
        [["d", v.isoformat()] if isinstance(v, dt.datetime) else ["v", v] for v in values]
    )
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, columns: Sequence[InstrumentedAttribute[Any]]) -> list[Any]:
    """The sort key inside a cursor; a 400 on ``cursor`` if it was not made by us."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = msgspec.json.decode(raw, type=list[tuple[str, Any]])
        if len(values) != len(columns):
            raise ValueError("wrong length")
        out = [dt.datetime.fromisoformat(value) if kind == "d" else value for kind, value in values]
    except (ValueError, binascii.Error, msgspec.DecodeError, TypeError):
        raise field_error("cursor", "is not a cursor this API returned") from None
    return out


def check_limit(limit: int | None) -> int:
    """The page size, default 50; a 400 on ``limit`` outside 1–200."""
    if limit is None:
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise field_error("limit", f"must be between 1 and {MAX_LIMIT}")
    return limit


async def paginate(
    session: AsyncSession,
    stmt: Select[Any],
    order_by: Sequence[InstrumentedAttribute[Any]],
    limit: int | None,
    cursor: str | None,
) -> tuple[list[Any], str | None]:
    """Rows of ``stmt`` newest first by ``order_by`` (e.g. created_at, id) after ``cursor``."""
    size = check_limit(limit)
    if cursor:
        # bind with the columns' own types, so SQLite compares timestamps in its stored format
        after = [
            literal(v, type_=c.type) for c, v in zip(order_by, decode_cursor(cursor, order_by), strict=True)
        ]
        stmt = stmt.where(tuple_(*order_by) < tuple_(*after))
    rows = list((await session.scalars(stmt.order_by(*(c.desc() for c in order_by)).limit(size + 1))).all())
    next_cursor = None
    if len(rows) > size:
        rows = rows[:size]
        last = rows[-1]
        next_cursor = encode_cursor([getattr(last, c.key) for c in order_by])
    return rows, next_cursor
