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
from segmently.db.models.alerts import Alert
from segmently.db.models.events import Event, EventKey, ExperimentConversion, FunnelProgress, MonthlyVisitor
from segmently.db.models.experiments import (
    Experiment,
    ExperimentVisitor,
    Flag,
    IdempotentRequest,
    SiteSettings,
    Variant,
)
from segmently.db.models.notifications import NotificationPreference, OutboxMail
from segmently.db.models.outbox import OutboxEvent

__all__ = [
    "Alert",
    "Event",
    "EventKey",
    "Experiment",
    "ExperimentConversion",
    "ExperimentVisitor",
    "Flag",
    "FunnelProgress",
    "IdempotentRequest",
    "Invitation",
    "ManagementKey",
    "Membership",
    "MonthlyVisitor",
    "NotificationPreference",
    "Organization",
    "OutboxEvent",
    "OutboxMail",
    "PasswordReset",
    "Site",
    "SiteSettings",
    "User",
    "Variant",
]
