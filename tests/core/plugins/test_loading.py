"""Plugins are found through entry points, can be disabled, and a broken one never stops the server."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from segmently.plugins import PluginHost
from tests.helpers import make_plugin_dist

BUNDLED = {
    "heatmaps": {
        "heatmaps.clicks": "professional",
        "heatmaps.scroll": "professional",
        "heatmaps.elements": "professional",
        "heatmaps.moves": "business",
    },
    "sessions": {"sessions.recordings": "enterprise"},
    "chat": {"chat.widget": "business"},
    "integrations": {
        "integrations.slack": "professional",
        "integrations.ga4": "business",
        "integrations.mixpanel": "business",
        "integrations.experiment_webhook": "business",
        "integrations.webhook_endpoints": "enterprise",
    },
    "billing": {"billing.stripe": "free"},
}


def test_bundled_plugins_and_dummy_are_discovered_through_entry_points() -> None:
    host = PluginHost.load()
    infos = {i.name: i for i in host.infos}
    for name, features in BUNDLED.items():
        assert infos[name].enabled, infos[name].error
        assert infos[name].distribution == f"segmently-{name}"
        assert {f.key: f.min_plan for f in infos[name].features} == features
    assert infos["dummy"].distribution == "segmently-dummy"
    assert host.enabled == frozenset({*BUNDLED, "dummy"})


def test_disabled_plugin_is_installed_but_not_loaded() -> None:
    host = PluginHost.load(disabled={"dummy", "chat"})
    infos = {i.name: i for i in host.infos}
    assert not infos["dummy"].enabled and infos["dummy"].error is None
    assert not infos["chat"].enabled
    assert host.pm.get_plugin("dummy") is None
    assert "dummy" not in host.routes()
    assert "chat" not in host.enabled and "heatmaps" in host.enabled


def test_unknown_disabled_name_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        PluginHost.load(disabled={"heatmpas"})
    assert any("heatmpas" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


def test_plugin_raising_at_import_is_left_out_with_its_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(
        str(make_plugin_dist(tmp_path, "broken", "raise RuntimeError('no config for broken')\n"))
    )
    host = PluginHost.load()
    infos = {i.name: i for i in host.infos}
    assert not infos["broken"].enabled
    assert infos["broken"].error == "RuntimeError: no config for broken"
    assert infos["heatmaps"].enabled  # the others load regardless


def test_misspelled_hook_makes_the_plugin_fail_loudly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = """
        from segmently.hookspecs import hookimpl

        @hookimpl
        def register_feature():
            return []
    """
    monkeypatch.syspath_prepend(str(make_plugin_dist(tmp_path, "typo", source)))
    host = PluginHost.load()
    info = next(i for i in host.infos if i.name == "typo")
    assert not info.enabled
    assert info.error is not None and "register_feature" in info.error
    assert host.pm.get_plugin("typo") is None


def test_async_start_up_hook_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = """
        from segmently.hookspecs import hookimpl

        @hookimpl
        async def register_features():
            return []
    """
    monkeypatch.syspath_prepend(str(make_plugin_dist(tmp_path, "asyncfeat", source)))
    with pytest.raises(TypeError, match="asyncfeat: register_features is called at start-up"):
        PluginHost.load(only={"asyncfeat"})
