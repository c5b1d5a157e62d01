"""Server-side SDK: evaluate a site's experiments and feature flags locally, in your own Python app.

The client fetches the document ``GET /api/v1/sdk/config`` serves (with the site's API key), keeps it,
and answers :meth:`~SegmentlyClient.get_variant`, :meth:`~SegmentlyClient.is_enabled` and
:meth:`~SegmentlyClient.get_all_flags` from memory with :mod:`segmently.assignment`, the engine the
server's ``/assign`` endpoint and the snippet use, so a visitor gets the same bucket everywhere.

* The config is revalidated with ``If-None-Match`` at most every ``refresh_seconds``, lazily, by the
  first evaluation after that time (``refresh()`` forces it); a ``304`` keeps the cached config.
* A failed revalidation keeps serving the last good config and logs a warning (logger
  ``segmently.sdk``); without any config yet every experiment is off (``None``) and every flag
  ``False``. Only :meth:`~SegmentlyClient.refresh` raises :class:`SegmentlyError`; call it at startup
  to fail fast on a wrong API key or URL.
* Local evaluation is deterministic but does not consult the assignments the server stored (its
  ``/assign`` is sticky): it equals ``/assign`` for visitors the server has not assigned, and for the
  others while weights stay as they were and traffic is not lowered. Changing the weights of a live
  experiment moves visitors between variants here; start a new experiment instead.

* Events: :meth:`~SegmentlyClient.track` queues one, and :meth:`~SegmentlyClient.get_variant` queues an
  ``assignment`` event the first time it puts a visitor in an experiment. A background thread (task)
  sends them to ``POST /api/v1/events/batch`` in batches, when a batch is full, every
  ``flush_interval`` seconds, on :meth:`~SegmentlyClient.flush` and on close (and at the
  interpreter's exit for the threaded client). Each event has a UUIDv7 ``event_id`` and a retry
  sends the same ids, so the server keeps one copy.

:class:`SegmentlyClient` is for threaded (WSGI) apps, :class:`AsyncSegmentlyClient` for asyncio (ASGI)
apps; both have the same methods and share one instance per process (the async one per event loop).
"""

from segmently.sdk._async import AsyncSegmentlyClient
from segmently.sdk._core import CONFIG_PATH, SegmentlyError, Variant
from segmently.sdk._events import EVENTS_PATH
from segmently.sdk._sync import SegmentlyClient

__all__ = [
    "CONFIG_PATH",
    "EVENTS_PATH",
    "AsyncSegmentlyClient",
    "SegmentlyClient",
    "SegmentlyError",
    "Variant",
]
