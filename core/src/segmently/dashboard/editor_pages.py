"""The visual editor (to come)."""

from __future__ import annotations

from litestar import Controller

from segmently.dashboard.errors import PAGE_ERRORS


class EditorPages(Controller):
    """The visual editor (to come)."""

    path = "/"
    include_in_schema = False
    exception_handlers = PAGE_ERRORS
