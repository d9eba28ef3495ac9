"""Plumbing shared by every Panoptic service: settings, logging, database, gRPC bootstrap."""
