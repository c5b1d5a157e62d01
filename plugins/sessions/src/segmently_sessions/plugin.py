"""Hook implementations of the sessions plugin (the only module the kernel imports)."""

from segmently.hookspecs import Feature, hookimpl


@hookimpl
def register_features() -> list[Feature]:
    """Features this plugin provides and the lowest plan that includes each."""
    return [
        Feature(key="sessions.recordings", name="Session recordings", min_plan="enterprise"),
    ]
