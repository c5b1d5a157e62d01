"""Segmently: a self-hosted experimentation platform (the kernel)."""

__version__ = "0.1.0"
