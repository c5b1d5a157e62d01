"""Hook implementations of the heatmaps plugin (the only module the kernel imports)."""

from segmently.hookspecs import Feature, hookimpl


@hookimpl
def register_features() -> list[Feature]:
    """Features this plugin provides and the lowest plan that includes each."""
    return [
        Feature(key="heatmaps.clicks", name="Click heatmap", min_plan="professional"),
        Feature(key="heatmaps.scroll", name="Scroll depth heatmap", min_plan="professional"),
        Feature(key="heatmaps.elements", name="Top elements table", min_plan="professional"),
        Feature(key="heatmaps.moves", name="Mouse move heatmap", min_plan="business"),
    ]
