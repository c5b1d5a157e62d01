"""Plugin loading, enablement and the typed hook caller (the only caller of hooks)."""

from segmently.plugins.entitlements import AllowAll, Denied, Entitlements
from segmently.plugins.host import HookFailure, PluginHost, VisitorExports, VisitorPurge
from segmently.plugins.loader import ENTRY_POINT_GROUP, PluginInfo

__all__ = [
    "ENTRY_POINT_GROUP",
    "AllowAll",
    "Denied",
    "Entitlements",
    "HookFailure",
    "PluginHost",
    "PluginInfo",
    "VisitorExports",
    "VisitorPurge",
]
