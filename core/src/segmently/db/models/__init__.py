"""Kernel models; importing this package puts every kernel table on ``Base.metadata``."""

from segmently.db.models.accounts import (
    Invitation,
    ManagementKey,
    Membership,
    Organization,
    PasswordReset,
    Site,
    User,
)
from segmently.db.models.experiments import (
    Experiment,
    ExperimentVisitor,
    Flag,
    IdempotentRequest,
    SiteSettings,
    Variant,
)
from segmently.db.models.outbox import OutboxEvent

__all__ = [
    "Experiment",
    "ExperimentVisitor",
    "Flag",
    "IdempotentRequest",
    "Invitation",
    "ManagementKey",
    "Membership",
    "Organization",
    "OutboxEvent",
    "PasswordReset",
    "Site",
    "SiteSettings",
    "User",
    "Variant",
]
