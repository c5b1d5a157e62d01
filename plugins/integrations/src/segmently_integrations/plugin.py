"""Hook implementations of the integrations plugin (the only module the kernel imports)."""

from segmently.hookspecs import Feature, hookimpl


@hookimpl
def register_features() -> list[Feature]:
    """Features this plugin provides and the lowest plan that includes each."""
    return [
        Feature(key="integrations.slack", name="Slack notifications", min_plan="professional"),
        Feature(key="integrations.ga4", name="Google Analytics 4", min_plan="business"),
        Feature(key="integrations.mixpanel", name="Mixpanel", min_plan="business"),
        Feature(
            key="integrations.experiment_webhook", name="Per-experiment outbound webhook", min_plan="business"
        ),
        Feature(
            key="integrations.webhook_endpoints", name="Organization webhook endpoints", min_plan="enterprise"
        ),
    ]
