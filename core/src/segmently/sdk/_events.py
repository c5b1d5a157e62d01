"""The events both clients queue and send: ``track()``'s, and the assignments ``get_variant`` makes.

Each event is encoded once, when it is queued, with its UUIDv7 ``event_id``: a batch that is retried is
sent again byte for byte, so the server keeps one copy of each event however often it arrives.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import random
import threading
from collections import OrderedDict, deque
from collections.abc import Mapping
from typing import Annotated, Any, Final

import httpx
import msgspec
import uuid_utils

EVENTS_PATH: Final = "/api/v1/events/batch"
ASSIGNMENT_EVENT: Final = "assignment"
MAX_BATCH_EVENTS: Final = 500
MAX_BATCH_BYTES: Final = 1_000_000
MAX_EVENT_ID_LENGTH: Final = 64
MAX_URL_LENGTH: Final = 2048

log = logging.getLogger("segmently.sdk")

_OPEN, _SEP, _CLOSE = b'{"events":[', b",", b"]}"


class EventSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How a client batches and retries events; the clients' keyword arguments of the same names."""

    batch_size: int
    flush_interval: float
    max_queue_size: int
    max_retries: int
    retry_backoff: float
    max_retry_wait: float
    track_assignments: bool
    assignment_cache_size: int

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= MAX_BATCH_EVENTS:
            raise ValueError(f"batch_size must be between 1 and {MAX_BATCH_EVENTS}")
        if self.max_queue_size < self.batch_size:
            raise ValueError("max_queue_size must be at least batch_size")
        if self.flush_interval <= 0:
            raise ValueError("flush_interval must be positive")
        if self.max_retries < 0 or self.retry_backoff < 0 or self.max_retry_wait < 0:
            raise ValueError("max_retries, retry_backoff and max_retry_wait must not be negative")
        if self.assignment_cache_size < 1:
            raise ValueError("assignment_cache_size must be positive")


_Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
_VisitorId = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
_Id = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_EVENT_ID_LENGTH)]
_Session = Annotated[str, msgspec.Meta(max_length=200)]
_Url = Annotated[str, msgspec.Meta(max_length=MAX_URL_LENGTH)]
_Device = Annotated[str, msgspec.Meta(max_length=32)]


class _Checked(msgspec.Struct):
    """What the batch endpoint accepts of an event: one event out of these bounds refuses the batch."""

    event_name: _Name
    visitor_id: _VisitorId
    event_id: _Id
    timestamp: dt.datetime
    session_id: _Session | None = None
    experiment_id: _Id | None = None
    variant_id: _Id | None = None
    event_data: msgspec.Raw = msgspec.Raw(b"")  # not decoded: an object, encoded from a mapping
    url: _Url | None = None
    device_type: _Device | None = None


_CHECK: Final = msgspec.json.Decoder(_Checked)


class _Event(msgspec.Struct, omit_defaults=True):
    """One event as the batch endpoint reads it; fields left None are not sent."""

    event_name: str
    visitor_id: str
    event_id: str
    timestamp: dt.datetime | str
    session_id: str | None = None
    experiment_id: str | None = None
    variant_id: str | None = None
    event_data: dict[str, Any] | None = None
    url: str | None = None
    device_type: str | None = None


def _timestamp(value: dt.datetime | str | None) -> dt.datetime | str:
    if value is None:
        return dt.datetime.now(dt.UTC)
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        raise ValueError("timestamp has no time zone (a naive datetime is ambiguous): pass an aware one")
    return value  # text is checked as the server reads it: RFC 3339, UTC without a zone


def encode_event(
    visitor_id: str,
    event_name: str,
    event_data: Mapping[str, Any] | None = None,
    *,
    event_id: str | None = None,
    session_id: str | None = None,
    experiment_id: str | None = None,
    variant_id: str | None = None,
    url: str | None = None,
    device_type: str | None = None,
    timestamp: dt.datetime | str | None = None,
) -> tuple[str, bytes]:
    """The event's id and its JSON, checked now: the server refuses a whole batch for one bad event.

    Raises:
        ValueError: a field the server would refuse (empty, too long, not text, a timestamp that is
            not ISO 8601 or a naive datetime), an ``assignment`` without experiment and variant ids,
            or an event larger than a batch may be.
        TypeError: ``event_data`` is not a mapping, or holds what JSON cannot.
    """
    if event_data is not None and not isinstance(event_data, Mapping):
        raise TypeError(f"event_data must be a mapping, not {type(event_data).__name__}")
    event = _Event(
        event_name=event_name,
        visitor_id=visitor_id,
        event_id=str(uuid_utils.uuid7()) if event_id is None else event_id,
        timestamp=_timestamp(timestamp),
        session_id=session_id,
        experiment_id=experiment_id,
        variant_id=variant_id,
        event_data=dict(event_data) if event_data is not None else None,
        url=url,
        device_type=device_type,
    )
    try:
        body = msgspec.json.encode(event)
    except (TypeError, msgspec.EncodeError) as exc:
        raise TypeError(f"event {event_name!r} cannot be sent as JSON: {exc}") from exc
    try:
        _CHECK.decode(body)
    except msgspec.ValidationError as exc:
        raise ValueError(f"event {event_name!r} would be refused: {exc}") from None
    if event_name == ASSIGNMENT_EVENT and (experiment_id is None or variant_id is None):
        raise ValueError("an assignment event names experiment_id and variant_id")
    if len(_OPEN) + len(body) + len(_CLOSE) > MAX_BATCH_BYTES:
        raise ValueError(f"event {event_name!r} is {len(body)} bytes, more than a batch may hold (1 MB)")
    return event.event_id, body


def batch_body(batch: list[bytes]) -> bytes:
    """The request body for encoded events: ``{"events": [...]}``."""
    return _OPEN + _SEP.join(batch) + _CLOSE


class EventQueue:
    """The events waiting to be sent, oldest first, and the (experiment, visitor) pairs already queued.

    Thread-safe; bounded: when full, the oldest event makes room and is counted as dropped.
    """

    def __init__(self, batch_size: int, max_size: int, seen_size: int) -> None:
        self.batch_size = batch_size
        self.max_size = max_size
        self.seen_size = seen_size
        self._lock = threading.Lock()
        self._events: deque[bytes] = deque()
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._dropped = 0

    def __len__(self) -> int:
        return len(self._events)

    def after_fork(self) -> None:
        """Forget a lock another thread of the parent process may have held."""
        self._lock = threading.Lock()

    def put(self, event: bytes) -> bool:
        """Queue an encoded event; whether a full batch is waiting."""
        with self._lock:
            if len(self._events) >= self.max_size:
                self._events.popleft()
                self._dropped += 1
            self._events.append(event)
            return len(self._events) >= self.batch_size

    def first_assignment(self, experiment_id: str, visitor_id: str) -> bool:
        """Whether this pair is new to the client; remembers it, forgetting the least recent beyond size."""
        key = (experiment_id, visitor_id)
        with self._lock:
            if key in self._seen:
                self._seen.move_to_end(key)
                return False
            self._seen[key] = None
            if len(self._seen) > self.seen_size:
                self._seen.popitem(last=False)
            return True

    def take(self, full_only: bool) -> list[bytes]:
        """The oldest events that fit one batch; none when empty, or when ``full_only`` and not full."""
        with self._lock:
            if not self._events or (full_only and len(self._events) < self.batch_size):
                return []
            batch: list[bytes] = []
            size = len(_OPEN) + len(_CLOSE)
            while self._events and len(batch) < self.batch_size:
                grown = size + len(self._events[0]) + (len(_SEP) if batch else 0)
                if grown > MAX_BATCH_BYTES:
                    break
                batch.append(self._events.popleft())
                size = grown
            return batch

    def requeue(self, batch: list[bytes]) -> None:
        """Put a batch that was not sent back in front, as far as there is room (its oldest go first)."""
        with self._lock:
            keep = batch[max(0, len(batch) - (self.max_size - len(self._events))) :]
            self._dropped += len(batch) - len(keep)
            self._events.extendleft(reversed(keep))

    def clear(self) -> int:
        """Drop every queued event; how many there were."""
        with self._lock:
            n = len(self._events)
            self._events.clear()
            return n

    def report_drops(self) -> None:
        """Log how many events the full queue dropped since the last report."""
        with self._lock:
            dropped, self._dropped = self._dropped, 0
        if dropped:
            log.warning(
                "Segmently: the event queue was full (max_queue_size=%d): dropped the %d oldest events",
                self.max_size,
                dropped,
            )


def detail_of(response: httpx.Response) -> str:
    """The server's ``detail``, else the start of the body, else the reason phrase."""
    detail = ""
    try:
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("detail"), str):
            detail = body["detail"]
    except ValueError:
        pass
    return detail or response.text[:200].strip() or response.reason_phrase


class Outcome(msgspec.Struct, frozen=True):
    """What one attempt at sending a batch came to.

    Attributes:
        done: sent, or refused for good (logged already); False: worth another attempt.
        retry_after: the seconds the server asked to wait (``Retry-After``), if it did.
        problem: what went wrong, for the log.
    """

    done: bool
    retry_after: float | None = None
    problem: str = ""


_DONE: Final = Outcome(done=True)


class _Answer(msgspec.Struct):
    accepted: int = 0
    rejected: dict[str, int] = {}
    duplicates: int = 0


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def judge(response: httpx.Response, count: int) -> Outcome:
    """Read the server's answer to a batch of ``count`` events; logs what was refused."""
    status = response.status_code
    if 200 <= status < 300:
        try:
            answer = msgspec.json.decode(response.content, type=_Answer)
        except msgspec.DecodeError:
            log.debug("Segmently: sent %d events (answer %d)", count, status)
            return _DONE
        if answer.rejected:
            reasons = ", ".join(f"{reason}: {n}" for reason, n in sorted(answer.rejected.items()))
            rejected = sum(answer.rejected.values())
            log.warning("Segmently: rejected %d of %d events (%s)", rejected, count, reasons)
        log.debug("Segmently: %d events accepted, %d duplicates", answer.accepted, answer.duplicates)
        return _DONE
    problem = f"{status} {detail_of(response)}"
    if status in (408, 429) or status >= 500:
        wait = _retry_after(response.headers.get("retry-after"))
        return Outcome(done=False, retry_after=wait, problem=problem)
    if status in (401, 403):
        log.error(
            "Segmently: dropped %d events, the server refused the API key or its organization (%s)",
            count,
            problem,
        )
    else:
        log.warning("Segmently: dropped %d events, the server refused the batch (%s)", count, problem)
    return _DONE


def unreachable(exc: httpx.HTTPError) -> Outcome:
    """The outcome of a request that got no answer (refused, reset, timed out)."""
    return Outcome(done=False, problem=f"not reachable: {exc!r}")


def retry_wait(settings: EventSettings, attempt: int, outcome: Outcome) -> float:
    """Seconds to wait before the retry after ``attempt`` (0-based): ``Retry-After``, else back-off.

    The back-off doubles with each attempt, with jitter so that many processes do not retry in step;
    both are capped at ``max_retry_wait``.
    """
    if outcome.retry_after is not None:
        return min(outcome.retry_after, settings.max_retry_wait)
    backoff = min(settings.max_retry_wait, settings.retry_backoff * 2.0**attempt)
    return backoff * random.uniform(0.5, 1.0)  # noqa: S311 (jitter, not a secret)


def give_up(queue: EventQueue, batch: list[bytes], attempts: int, problem: str, final: bool) -> None:
    """After the last attempt: keep the batch for the next flush, or, when closing, drop everything."""
    if final:
        dropped = len(batch) + queue.clear()
        log.error(
            "Segmently: dropped %d events on close, not sent after %d attempts (last: %s)",
            dropped,
            attempts,
            problem,
        )
    else:
        queue.requeue(batch)
        log.warning(
            "Segmently: %d events not sent after %d attempts (last: %s); kept for the next flush",
            len(batch),
            attempts,
            problem,
        )
