"""Errors shared across the kernel's modules."""

ENV_PREFIX = "SEGMENTLY_"


class SettingsError(ValueError):
    """A setting has a value the server cannot use; the message names the variable."""
