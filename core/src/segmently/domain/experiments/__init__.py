"""Experiments: configuration, lifecycle and the assignment endpoints."""
