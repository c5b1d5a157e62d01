"""Settings come from SEGMENTLY_* variables; bad values get one clear message naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from segmently.settings import Settings, SettingsError


def env(tmp_path: Path, **values: str) -> dict[str, str]:
    return {"SEGMENTLY_DATA_DIR": str(tmp_path), **{f"SEGMENTLY_{k}": v for k, v in values.items()}}


def test_defaults_give_embedded_sqlite_and_a_stored_secret(tmp_path: Path) -> None:
    s = Settings.from_env(env(tmp_path))
    assert s.database_url == f"sqlite+aiosqlite:///{tmp_path / 'segmently.db'}"
    assert s.is_sqlite
    assert len(s.secret_key) >= 32
    assert Settings.from_env(env(tmp_path)).secret_key == s.secret_key  # kept across restarts
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_postgres_urls_are_normalised_to_psycopg(tmp_path: Path) -> None:
    s = Settings.from_env(env(tmp_path, DATABASE_URL="postgresql://u:p@db.internal:5432/segmently"))
    assert s.database_url == "postgresql+psycopg://u:p@db.internal:5432/segmently"
    assert not s.is_sqlite


def test_disabled_plugins_are_a_comma_list(tmp_path: Path) -> None:
    s = Settings.from_env(env(tmp_path, DISABLED_PLUGINS=" chat, heatmaps ,,"))
    assert s.disabled_plugins == {"chat", "heatmaps"}


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DATABASE_URL", "not a url", "SEGMENTLY_DATABASE_URL is malformed"),
        ("DATABASE_URL", "mysql://root@localhost/x", "supported are PostgreSQL"),
        ("DATABASE_URL", "postgresql://localhost", "names no database"),
        ("SECRET_KEY", "short", "at least 32 characters"),
        ("BASE_URL", "ftp://x", "SEGMENTLY_BASE_URL"),
        ("REDIS_URL", "http://cache:6379", "SEGMENTLY_REDIS_URL"),
        ("PLANS_FILE", "/nonexistent/plans.toml", "SEGMENTLY_PLANS_FILE"),
        ("OUTBOX_POLL_SECONDS", "soon", "SEGMENTLY_OUTBOX_POLL_SECONDS"),
        ("LOG_LEVEL", "LOUD", "SEGMENTLY_LOG_LEVEL"),
        ("GEOIP_DB", "/nonexistent/GeoLite2-Country.mmdb", "SEGMENTLY_GEOIP_DB"),
        ("COUNTRY_HEADER", "CF IPCountry", "SEGMENTLY_COUNTRY_HEADER"),
        ("BCRYPT_ROUNDS", "4", "SEGMENTLY_BCRYPT_ROUNDS"),
    ],
)
def test_bad_values_name_the_variable(tmp_path: Path, name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env(tmp_path, **{name: value}))
