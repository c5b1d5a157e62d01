"""Password reset by one-time token (to be built)."""

from __future__ import annotations

from litestar import Controller


class PasswordResetController(Controller):
    """``/api/v1/auth/password-reset``: request a reset mail, then set a new password with its token."""

    path = "/api/v1/auth/password-reset"
    tags = ["auth"]
