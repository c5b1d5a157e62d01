"""Segmently chat plugin: live chat widget for customer sites."""
