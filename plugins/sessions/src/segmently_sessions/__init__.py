"""Segmently sessions plugin: rrweb session recordings and the session player."""
