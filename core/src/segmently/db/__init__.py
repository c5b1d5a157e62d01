"""Database access: the shared model base, engines and sessions, migrations and locks."""

from segmently.db.base import Base, new_id, utcnow
from segmently.db.engine import Database

__all__ = ["Base", "Database", "new_id", "utcnow"]
