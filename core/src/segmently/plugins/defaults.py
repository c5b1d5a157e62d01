"""The kernel's own answers to ``get_*`` hooks, asked after every plugin."""

from __future__ import annotations

from segmently.hookspecs import OrgRef, PlanName, hookimpl


@hookimpl(trylast=True)
def get_plan(org: OrgRef) -> PlanName | None:
    """The plan stored on the organization (``segmently orgs set-plan``)."""
    return org.plan
