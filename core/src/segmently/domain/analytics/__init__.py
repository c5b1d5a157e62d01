"""Experiment results, their export, and the organization's cross-site overview (docs/analytics.md)."""
