"""Visitor events: ingestion, the live feed, analytics and visitors' data rights."""
