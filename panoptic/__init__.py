"""Panoptic: store and serve claims — who said what, on which topic — with every revision kept."""

__version__ = "0.1.0"
