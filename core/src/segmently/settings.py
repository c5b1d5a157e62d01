"""Server settings, read from ``SEGMENTLY_*`` environment variables."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import urlsplit

import msgspec

from segmently.errors import ENV_PREFIX, SettingsError
from segmently.mail import MailSettings

__all__ = ["ENV_PREFIX", "SNIPPET_DIST", "Settings", "SettingsError", "check_database_url"]

SNIPPET_DIST = Path(__file__).resolve().parents[3] / "snippet" / "dist"
"""The snippet's build output in a checkout of the repository (``npm run build`` in ``snippet/``)."""

_SUPPORTED_DRIVERS = ("sqlite+aiosqlite", "postgresql+psycopg")


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the server reads from its environment.

    Attributes:
        data_dir: Where the embedded database, secret key and lock files live.
        database_url: SQLAlchemy URL; default embedded SQLite in ``data_dir``.
        secret_key: Signs tokens; generated once into ``data_dir`` when unset.
        disabled_plugins: Installed plugins the self-hoster blocks on this server.
        plans_file: TOML file overriding the default plans table.
        base_url: Public URL of this server (links in mails, snippet tag).
        redis_url: Optional Redis for stores shared across app nodes.
        outbox_poll_seconds: How often a node looks for domain events written by
            other processes (its own are dispatched right after commit).
        scheduler: Whether this node runs the scheduled jobs (every node may; each
            run takes a cluster-wide lock).
        job_interval_seconds: Period of the kernel's minute jobs (schedule, winners,
            durations); 60 in production, shorter in tests.
        snippet_dir: The snippet's built files (``segmently.js`` and its chunks) served at
            ``/segmently.js``, ``/snippet/{name}.js`` and ``/s/{api_key}.js``.
    """

    data_dir: Path
    database_url: str
    secret_key: str
    disabled_plugins: frozenset[str] = frozenset()
    plans_file: Path | None = None
    base_url: str = "http://127.0.0.1:8000"
    redis_url: str | None = None
    log_level: str = "INFO"
    outbox_poll_seconds: float = 2.0
    bcrypt_rounds: int = 12
    password_min_length: int = 8
    mail: MailSettings = MailSettings()
    country_header: str | None = None
    geoip_db: Path | None = None
    scheduler: bool = True
    job_interval_seconds: float = 60.0
    snippet_dir: Path = SNIPPET_DIST

    @property
    def is_sqlite(self) -> bool:
        """Whether the database is the embedded SQLite."""
        return self.database_url.startswith("sqlite")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, create_dirs: bool = True) -> Settings:
        """Read settings from ``environ`` (default ``os.environ``).

        Raises:
            SettingsError: A value is malformed; the message names the variable.
        """
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(ENV_PREFIX + name)
            return value.strip() if value and value.strip() else None

        data_dir = Path(get("DATA_DIR") or ".segmently").expanduser().resolve()
        if create_dirs:
            try:
                data_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise SettingsError(
                    f"SEGMENTLY_DATA_DIR={data_dir}: cannot create it ({exc.strerror})"
                ) from exc
        database_url = get("DATABASE_URL") or f"sqlite+aiosqlite:///{data_dir / 'segmently.db'}"
        database_url = check_database_url(database_url)
        secret_key = get("SECRET_KEY") or _stored_secret_key(data_dir, create=create_dirs)
        if len(secret_key) < 32:
            raise SettingsError("SEGMENTLY_SECRET_KEY must be at least 32 characters long")
        base_url = (get("BASE_URL") or "http://127.0.0.1:8000").rstrip("/")
        if urlsplit(base_url).scheme not in ("http", "https") or not urlsplit(base_url).netloc:
            raise SettingsError(f"SEGMENTLY_BASE_URL={base_url!r} is not an http(s) URL")
        redis_url = get("REDIS_URL")
        if redis_url and urlsplit(redis_url).scheme not in ("redis", "rediss", "unix"):
            raise SettingsError(f"SEGMENTLY_REDIS_URL={redis_url!r} is not a redis:// URL")
        plans = get("PLANS_FILE")
        plans_file = Path(plans).expanduser() if plans else None
        if plans_file is not None and not plans_file.is_file():
            raise SettingsError(f"SEGMENTLY_PLANS_FILE={plans}: no such file")
        disabled = frozenset(p.strip() for p in (get("DISABLED_PLUGINS") or "").split(",") if p.strip())
        log_level = (get("LOG_LEVEL") or "INFO").upper()
        if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise SettingsError(f"SEGMENTLY_LOG_LEVEL={log_level!r}: use DEBUG, INFO, WARNING or ERROR")
        outbox_poll = _seconds_setting(get, "OUTBOX_POLL_SECONDS", 2.0)
        rounds = _int_setting(get, "BCRYPT_ROUNDS", 12, 10, 16)
        min_password = _int_setting(get, "PASSWORD_MIN_LENGTH", 8, 6, 128)
        country_header = get("COUNTRY_HEADER")
        if country_header and not re.fullmatch(r"[A-Za-z0-9-]{1,64}", country_header):
            raise SettingsError(f"SEGMENTLY_COUNTRY_HEADER={country_header!r} is not a header name")
        geoip = get("GEOIP_DB")
        geoip_db = Path(geoip).expanduser() if geoip else None
        if geoip_db is not None and not geoip_db.is_file():
            raise SettingsError(f"SEGMENTLY_GEOIP_DB={geoip}: no such file (a MaxMind .mmdb database)")
        scheduler = (get("SCHEDULER") or "on").lower()
        if scheduler not in ("on", "off", "1", "0", "true", "false"):
            raise SettingsError(f"SEGMENTLY_SCHEDULER={scheduler!r}: use on or off")
        job_interval = _seconds_setting(get, "JOB_INTERVAL_SECONDS", 60.0)
        snippet = get("SNIPPET_DIR")
        return cls(
            snippet_dir=Path(snippet).expanduser().resolve() if snippet else SNIPPET_DIST,
            job_interval_seconds=job_interval,
            scheduler=scheduler in ("on", "1", "true"),
            geoip_db=geoip_db,
            country_header=country_header,
            mail=MailSettings.from_env(env),
            bcrypt_rounds=rounds,
            password_min_length=min_password,
            data_dir=data_dir,
            database_url=database_url,
            secret_key=secret_key,
            disabled_plugins=disabled,
            plans_file=plans_file,
            base_url=base_url,
            redis_url=redis_url,
            log_level=log_level,
            outbox_poll_seconds=outbox_poll,
        )


def _seconds_setting(get: Callable[[str], str | None], name: str, default: float) -> float:
    """A period in seconds, 0.05 to 3600."""
    raw = get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"SEGMENTLY_{name}={raw!r} is not a number") from None
    if not 0.05 <= value <= 3600:
        raise SettingsError(f"SEGMENTLY_{name} must be between 0.05 and 3600")
    return value


def _int_setting(get: Callable[[str], str | None], name: str, default: int, low: int, high: int) -> int:
    raw = get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"SEGMENTLY_{name}={raw!r} is not a whole number") from None
    if not low <= value <= high:
        raise SettingsError(f"SEGMENTLY_{name} must be between {low} and {high}")
    return value


def check_database_url(url: str) -> str:
    """Return ``url`` normalised to an async driver, or raise :class:`SettingsError`.

    ``postgresql://`` and ``postgres://`` become ``postgresql+psycopg://``,
    ``sqlite://`` becomes ``sqlite+aiosqlite://``.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise SettingsError(
            "SEGMENTLY_DATABASE_URL is malformed: expected postgresql+psycopg://user@host/db "
            "or sqlite+aiosqlite:///path/to/file.db"
        ) from None
    driver = parsed.drivername
    if driver in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif driver == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    if parsed.drivername not in _SUPPORTED_DRIVERS:
        raise SettingsError(
            f"SEGMENTLY_DATABASE_URL uses {driver!r}: supported are PostgreSQL (postgresql+psycopg://) "
            "and SQLite (sqlite+aiosqlite:///)"
        )
    if parsed.drivername.startswith("postgresql") and not parsed.database:
        raise SettingsError("SEGMENTLY_DATABASE_URL names no database (…/dbname)")
    return parsed.render_as_string(hide_password=False)


def _stored_secret_key(data_dir: Path, *, create: bool) -> str:
    """The data dir's generated secret key, so a demo needs no configuration."""
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_urlsafe(48)
    if create:
        path.touch(mode=0o600)
        path.write_text(key)
    return key
