"""The public API for customer sites and server SDKs."""
