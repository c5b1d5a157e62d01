"""Segmently heatmaps plugin: click, scroll, element and mouse-move heatmaps."""
