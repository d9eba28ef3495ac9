"""The Panoptic services: indexer (writes), retriever (reads) and gateway (REST)."""
