"""Kernel models; importing this package puts every kernel table on ``Base.metadata``."""

from segmently.db.models.outbox import OutboxEvent

__all__ = ["OutboxEvent"]
