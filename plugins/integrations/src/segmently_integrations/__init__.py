"""Segmently integrations plugin: slack, GA4, Mixpanel and webhook integrations."""
