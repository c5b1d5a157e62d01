"""Segmently billing plugin: stripe subscriptions and the billing settings tab."""
