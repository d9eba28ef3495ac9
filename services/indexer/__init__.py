"""The Panoptic indexer service."""
