from google.api import field_behavior_pb2 as _field_behavior_pb2
from panoptic.v1 import resources_pb2 as _resources_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class IndexOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INDEX_OUTCOME_UNSPECIFIED: _ClassVar[IndexOutcome]
    INDEX_OUTCOME_CREATED: _ClassVar[IndexOutcome]
    INDEX_OUTCOME_UPDATED: _ClassVar[IndexOutcome]
    INDEX_OUTCOME_UNCHANGED: _ClassVar[IndexOutcome]
INDEX_OUTCOME_UNSPECIFIED: IndexOutcome
INDEX_OUTCOME_CREATED: IndexOutcome
INDEX_OUTCOME_UPDATED: IndexOutcome
INDEX_OUTCOME_UNCHANGED: IndexOutcome

class IndexClaimsRequest(_message.Message):
    __slots__ = ("request_id", "actors", "topics", "claims")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ACTORS_FIELD_NUMBER: _ClassVar[int]
    TOPICS_FIELD_NUMBER: _ClassVar[int]
    CLAIMS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    actors: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Actor]
    topics: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Topic]
    claims: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Claim]
    def __init__(self, request_id: _Optional[str] = ..., actors: _Optional[_Iterable[_Union[_resources_pb2.Actor, _Mapping]]] = ..., topics: _Optional[_Iterable[_Union[_resources_pb2.Topic, _Mapping]]] = ..., claims: _Optional[_Iterable[_Union[_resources_pb2.Claim, _Mapping]]] = ...) -> None: ...

class IndexedClaim(_message.Message):
    __slots__ = ("claim_id", "revision", "outcome")
    CLAIM_ID_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    claim_id: str
    revision: int
    outcome: IndexOutcome
    def __init__(self, claim_id: _Optional[str] = ..., revision: _Optional[int] = ..., outcome: _Optional[_Union[IndexOutcome, str]] = ...) -> None: ...

class IndexClaimsResponse(_message.Message):
    __slots__ = ("created", "updated", "unchanged", "claims", "actors_upserted", "topics_upserted", "batches", "replayed_batches", "consistency_token")
    CREATED_FIELD_NUMBER: _ClassVar[int]
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    CLAIMS_FIELD_NUMBER: _ClassVar[int]
    ACTORS_UPSERTED_FIELD_NUMBER: _ClassVar[int]
    TOPICS_UPSERTED_FIELD_NUMBER: _ClassVar[int]
    BATCHES_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_BATCHES_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_TOKEN_FIELD_NUMBER: _ClassVar[int]
    created: int
    updated: int
    unchanged: int
    claims: _containers.RepeatedCompositeFieldContainer[IndexedClaim]
    actors_upserted: int
    topics_upserted: int
    batches: int
    replayed_batches: int
    consistency_token: str
    def __init__(self, created: _Optional[int] = ..., updated: _Optional[int] = ..., unchanged: _Optional[int] = ..., claims: _Optional[_Iterable[_Union[IndexedClaim, _Mapping]]] = ..., actors_upserted: _Optional[int] = ..., topics_upserted: _Optional[int] = ..., batches: _Optional[int] = ..., replayed_batches: _Optional[int] = ..., consistency_token: _Optional[str] = ...) -> None: ...

class RetractClaimRequest(_message.Message):
    __slots__ = ("claim_id", "reason", "request_id")
    CLAIM_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    claim_id: str
    reason: str
    request_id: str
    def __init__(self, claim_id: _Optional[str] = ..., reason: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...
