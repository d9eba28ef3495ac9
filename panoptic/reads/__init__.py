"""The read model: claims, actors, topics and timelines as plain values, read with plain keyset
SQL on a read-only role. The retriever's gRPC face and the admin dashboard both stand on it.
"""
