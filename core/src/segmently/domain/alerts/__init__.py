"""Scheduled jobs of the kernel and the notification center (alerts)."""
