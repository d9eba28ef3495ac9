"""The RetrieverService servicer: translates protobuf to query parameters and rows back."""

from __future__ import annotations

from panoptic.core.service import PoolHolder
from panoptic.v1 import retriever_service_pb2_grpc


class RetrieverServicer(retriever_service_pb2_grpc.RetrieverServiceServicer):
    """Every read of the contract. Not implemented yet (issue 4): the generated base class
    answers UNIMPLEMENTED."""

    def __init__(self, database: PoolHolder) -> None:
        self._database = database
