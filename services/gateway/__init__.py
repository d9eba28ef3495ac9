"""The Panoptic gateway service."""
