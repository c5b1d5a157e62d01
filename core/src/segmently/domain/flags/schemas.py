"""Request and response bodies of the feature flags API."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec

FlagKey = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[a-z0-9][a-z0-9_-]{0,99}$",
        description="Lowercase letters, digits, - and _; starts with a letter or digit; at most 100",
        examples=["new-checkout-ui"],
    ),
]
FlagName = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"\S")]
FlagDescription = Annotated[str, msgspec.Meta(max_length=2000)]
Rollout = Annotated[float, msgspec.Meta(ge=0, le=100, description="Percent of visitors, 0–100")]
NewStatus = Literal["active", "inactive"]
FlagStatus = Literal["active", "inactive", "archived"]
STATUSES: tuple[FlagStatus, ...] = ("active", "inactive", "archived")


class FlagIn(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/v1/projects/{project_id}/flags``."""

    key: FlagKey
    name: FlagName
    description: FlagDescription = ""
    status: NewStatus = "inactive"
    rollout_percentage: Rollout = 0.0


class FlagPatch(msgspec.Struct, forbid_unknown_fields=True):
    """``PATCH /api/v1/flags/{flag_id}``: the fields to change (the key never changes)."""

    name: FlagName | None = None
    description: FlagDescription | None = None
    status: FlagStatus | None = None
    rollout_percentage: Rollout | None = None


class FlagOut(msgspec.Struct):
    """A flag as the API shows it; ``version`` is also sent as ``ETag``."""

    id: str
    key: str
    name: str
    description: str
    status: str
    rollout_percentage: float
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
