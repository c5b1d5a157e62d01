"""The experiment wizard (to come)."""

from __future__ import annotations

from litestar import Controller

from segmently.dashboard.errors import PAGE_ERRORS


class ExperimentPages(Controller):
    """The experiment wizard (to come)."""

    path = "/"
    include_in_schema = False
    exception_handlers = PAGE_ERRORS
