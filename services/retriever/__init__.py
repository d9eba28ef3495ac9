"""The Panoptic retriever service."""
