"""Request and response bodies of the accounts API."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec

Email = Annotated[str, msgspec.Meta(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
Password = Annotated[str, msgspec.Meta(max_length=1024)]


class SignupIn(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/v1/auth/signup``."""

    email: Email
    password: Password
    name: Name
    organization: Name | None = None
    invitation_token: str | None = None


class LoginIn(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/v1/auth/login``."""

    email: Annotated[str, msgspec.Meta(max_length=254)]
    password: Password


class UserOut(msgspec.Struct):
    """A user as the API shows it."""

    id: str
    email: str
    name: str
    status: str
    created_at: dt.datetime


class OrganizationOut(msgspec.Struct):
    """An organization as a member sees it."""

    id: str
    name: str
    plan: str
    status: str
    role: str | None = None


class AuthOut(msgspec.Struct):
    """A signed-in session: the token to send as ``Authorization: Bearer``."""

    token: str
    user: UserOut
    organization: OrganizationOut


class MeOut(msgspec.Struct):
    """``GET /api/v1/me``."""

    user: UserOut
    organization: OrganizationOut
    organizations: list[OrganizationOut]


class ProfileIn(msgspec.Struct, forbid_unknown_fields=True):
    """``PATCH /api/v1/me``."""

    name: Name | None = None
    email: Email | None = None


class PasswordChangeIn(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/v1/me/password``."""

    current_password: Password
    new_password: Password


TeamRole = Literal["admin", "member"]


class InvitationIn(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/v1/organization/invitations``."""

    email: Email
    role: TeamRole = "member"


class InvitationOut(msgspec.Struct):
    """A pending (or past) invitation, as the team page lists it."""

    id: str
    email: str
    role: str
    status: str  # pending | accepted | cancelled | expired
    expires_at: dt.datetime
    created_at: dt.datetime


class InvitationPreview(msgspec.Struct):
    """What the acceptance page shows before anyone signs in."""

    organization_name: str
    email: str
    role: str
    inviter_name: str | None
    account_exists: bool
    expires_at: dt.datetime


class MemberOut(msgspec.Struct):
    """A member on the team page, with why they cannot be removed (if so)."""

    id: str
    user_id: str
    email: str
    name: str
    role: str
    status: str
    joined_at: dt.datetime
    removable: bool
    remove_reason: str | None


class RoleIn(msgspec.Struct, forbid_unknown_fields=True):
    """``PATCH /api/v1/organization/members/{id}``."""

    role: TeamRole


class TransferIn(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/v1/organization/transfer-ownership``."""

    membership_id: str


class OrganizationIn(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/v1/organizations`` and ``PATCH /api/v1/organization``."""

    name: Name


class UsageOut(msgspec.Struct):
    """One usage badge, e.g. ``1/1 sites``."""

    used: int
    allowed: int | None
    label: str
    at_limit: bool


class OrganizationDetail(msgspec.Struct):
    """``GET /api/v1/organization``: the current organization, its plan and usage."""

    organization: OrganizationOut
    plan: str
    usage: dict[str, UsageOut]
