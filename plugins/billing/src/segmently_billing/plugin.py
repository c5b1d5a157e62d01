"""Hook implementations of the billing plugin (the only module the kernel imports)."""

from segmently.hookspecs import Feature, hookimpl


@hookimpl
def register_features() -> list[Feature]:
    """Features this plugin provides and the lowest plan that includes each."""
    return [
        Feature(key="billing.stripe", name="Stripe billing", min_plan="free"),
    ]
