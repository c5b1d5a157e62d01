"""Wire shapes of ``/api/v1/events/track`` and ``/api/v1/events/batch``, and the kernel's event types."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Final

import msgspec

from segmently.hookspecs import EventType

MAX_BATCH_EVENTS: Final = 500
MAX_BATCH_BYTES: Final = 1024 * 1024
MAX_TRACK_BYTES: Final = 64 * 1024
MAX_AMOUNT: Final = 1e12

EventName = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
VisitorId = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
ClientEventId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Ref = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class EventIn(msgspec.Struct, forbid_unknown_fields=True):
    """One event as a site, SDK or server sends it.

    ``event_data`` is kept as raw JSON: it is stored as sent and only decoded for the
    event names whose data the kernel or a plugin reads (see :data:`KERNEL_EVENT_TYPES`).
    """

    event_name: EventName
    visitor_id: VisitorId
    event_id: ClientEventId | None = None
    session_id: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    experiment_id: Ref | None = None
    variant_id: Ref | None = None
    event_data: msgspec.Raw = msgspec.Raw(b"")
    url: Annotated[str, msgspec.Meta(max_length=2048)] | None = None
    device_type: Annotated[str, msgspec.Meta(max_length=32)] | None = None
    timestamp: dt.datetime | None = None


class TrackIn(EventIn, forbid_unknown_fields=True):
    """``POST /events/track``: one event; ``api_key`` in the body for ``sendBeacon``."""

    api_key: str | None = None


class BatchIn(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /events/batch``: up to 500 events; ``api_key`` in the body for ``sendBeacon``."""

    events: Annotated[list[EventIn], msgspec.Meta(min_length=1, max_length=MAX_BATCH_EVENTS)]
    api_key: str | None = None


BATCH_DECODER: Final = msgspec.json.Decoder(BatchIn)
TRACK_DECODER: Final = msgspec.json.Decoder(TrackIn)


def track_event(data: TrackIn) -> EventIn:
    """The event of a ``/track`` body (without its ``api_key``)."""
    return EventIn(**{f: getattr(data, f) for f in EventIn.__struct_fields__})


class IngestOut(msgspec.Struct):
    """The 202 answer, sent after the commit.

    ``accepted`` events are stored; ``duplicates`` were stored before (same
    ``event_id``) and are not stored again; ``rejected`` counts refused events by reason.
    """

    accepted: int
    duplicates: int
    rejected: dict[str, int]


# ---------------------------------------------------------- kernel events ---


class PageViewData(msgspec.Struct):
    """``page_view``: ``hidden_ms`` is how long anti-flicker hid the page."""

    hidden_ms: Annotated[int, msgspec.Meta(ge=0, le=600_000)] | None = None


class TimeOnPageData(msgspec.Struct):
    """``time_on_page``: seconds the visitor stayed; under 5 s counts as a bounce."""

    seconds: Annotated[float, msgspec.Meta(ge=0, le=86_400)]


Money = Annotated[float, msgspec.Meta(ge=-MAX_AMOUNT, le=MAX_AMOUNT)]
"""A revenue amount: finite and within ±10¹² (refunds may be negative)."""


class ConversionData(msgspec.Struct):
    """``conversion``: which goal (by id or name; none means the primary goal) and its value."""

    goal_id: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    goal_name: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    revenue: Money | None = None
    value: Money | None = None


class AnyData(msgspec.Struct):
    """Events whose data the kernel does not read (only checked to be an object)."""


KERNEL_EVENT_TYPES: Final[dict[str, EventType]] = {
    t.name: t
    for t in (
        EventType(name="page_view", data_type=PageViewData),
        EventType(name="assignment", data_type=AnyData),
        EventType(name="conversion", data_type=ConversionData),
        EventType(name="bounce", data_type=AnyData),
        EventType(name="time_on_page", data_type=TimeOnPageData),
    )
}
"""The kernel's event names; any other name not declared by a plugin is a custom event."""

BOUNCE_SECONDS: Final = 5.0
"""A page view shorter than this is a bounce and is left out of the average time on page."""


def revenue_of(data: ConversionData | dict[str, Any] | None) -> float:
    """Revenue of a converting event: ``event_data.revenue``, else ``event_data.value``, else 0."""
    if data is None:
        return 0.0
    if isinstance(data, ConversionData):
        amount = data.revenue if data.revenue is not None else data.value
        return float(amount) if amount is not None else 0.0
    for key in ("revenue", "value"):
        amount = data.get(key)
        if isinstance(amount, int | float) and not isinstance(amount, bool):
            # a custom event's data is not validated: an amount out of range counts as none
            return float(amount) if abs(amount) <= MAX_AMOUNT else 0.0
    return 0.0
