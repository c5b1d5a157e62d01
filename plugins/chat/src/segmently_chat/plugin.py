"""Hook implementations of the chat plugin (the only module the kernel imports)."""

from segmently.hookspecs import Feature, hookimpl


@hookimpl
def register_features() -> list[Feature]:
    """Features this plugin provides and the lowest plan that includes each."""
    return [
        Feature(key="chat.widget", name="Live chat widget", min_plan="business"),
    ]
