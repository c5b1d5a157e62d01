"""Find installed plugins through entry points and register the enabled ones."""

from __future__ import annotations

import importlib.metadata
import logging
import traceback
from collections.abc import Iterable

import msgspec
import pluggy

from segmently import hookspecs

ENTRY_POINT_GROUP = "segmently.plugins"
KERNEL_PLUGIN = "kernel"
log = logging.getLogger(__name__)


class PluginInfo(msgspec.Struct, kw_only=True):
    """One installed plugin as ``segmently plugins list`` shows it.

    Attributes:
        name: Entry point name; what ``SEGMENTLY_DISABLED_PLUGINS`` refers to.
        distribution: The distribution that declares the entry point.
        version: That distribution's version.
        enabled: Loaded and enabled on this server.
        error: Why it failed to load, if it did.
        features: Features it registered.
    """

    name: str
    distribution: str
    version: str
    enabled: bool = False
    error: str | None = None
    features: list[hookspecs.Feature] = []


def new_plugin_manager() -> pluggy.PluginManager:
    """A plugin manager that knows every hook spec and the kernel's defaults."""
    from segmently.plugins import defaults

    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    pm.register(defaults, name=KERNEL_PLUGIN)
    return pm


def load_plugins(
    pm: pluggy.PluginManager,
    disabled: Iterable[str] = (),
    only: Iterable[str] | None = None,
) -> list[PluginInfo]:
    """Register every installed plugin that is not disabled.

    A plugin that raises while loading, or that implements a hook the kernel does
    not know (a misspelling), is left out and reported with its error; the others
    load regardless.

    Args:
        pm: The plugin manager to register into.
        disabled: Plugin names blocked on this server.
        only: If given, load just these plugins (tests).

    Returns:
        One entry per installed plugin, in name order.
    """
    disabled = set(disabled)
    wanted = None if only is None else set(only)
    infos: list[PluginInfo] = []
    seen: set[str] = set()
    for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if ep.name in seen:  # the same distribution visible twice on sys.path
            continue
        seen.add(ep.name)
        dist = ep.dist
        info = PluginInfo(
            name=ep.name,
            distribution=dist.name if dist else "?",
            version=dist.version if dist else "?",
        )
        infos.append(info)
        if ep.name in disabled or (wanted is not None and ep.name not in wanted):
            continue
        try:
            plugin = ep.load()
            pm.register(plugin, name=ep.name)
            _check_hooks(pm, ep.name)
        except Exception as exc:
            if pm.get_plugin(ep.name) is not None:
                pm.unregister(name=ep.name)
            info.error = f"{type(exc).__name__}: {exc}"
            log.error(
                "plugin %s failed to load and is left out: %s",
                ep.name,
                info.error,
                extra={"plugin": ep.name, "traceback": traceback.format_exc(limit=5)},
            )
            continue
        info.enabled = True
    unknown = disabled - seen
    if unknown:
        log.warning(
            "SEGMENTLY_DISABLED_PLUGINS names plugins that are not installed: %s",
            ", ".join(sorted(unknown)),
        )
    pm.check_pending()
    return infos


def _check_hooks(pm: pluggy.PluginManager, name: str) -> None:
    """Refuse a plugin whose hook implementations have no spec (misspelled names)."""
    plugin = pm.get_plugin(name)
    unknown = [
        caller.name
        for caller in pm.get_hookcallers(plugin) or []
        if caller.spec is None and not caller.name.startswith("_")
    ]
    if unknown:
        raise pluggy.PluginValidationError(
            plugin, f"unknown hook(s) {', '.join(sorted(unknown))} (see docs/plugin_hooks.md)"
        )
