"""Client libraries for Panoptic's gRPC services, which pipelines import without any server."""
