import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ActorKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACTOR_KIND_UNSPECIFIED: _ClassVar[ActorKind]
    ACTOR_KIND_PERSON: _ClassVar[ActorKind]
    ACTOR_KIND_ORGANISATION: _ClassVar[ActorKind]
    ACTOR_KIND_OTHER: _ClassVar[ActorKind]

class ClaimState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CLAIM_STATE_UNSPECIFIED: _ClassVar[ClaimState]
    CLAIM_STATE_ACTIVE: _ClassVar[ClaimState]
    CLAIM_STATE_RETRACTED: _ClassVar[ClaimState]

class ClaimChange(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CLAIM_CHANGE_UNSPECIFIED: _ClassVar[ClaimChange]
    CLAIM_CHANGE_CREATED: _ClassVar[ClaimChange]
    CLAIM_CHANGE_UPDATED: _ClassVar[ClaimChange]
    CLAIM_CHANGE_RETRACTED: _ClassVar[ClaimChange]
    CLAIM_CHANGE_RESTORED: _ClassVar[ClaimChange]
ACTOR_KIND_UNSPECIFIED: ActorKind
ACTOR_KIND_PERSON: ActorKind
ACTOR_KIND_ORGANISATION: ActorKind
ACTOR_KIND_OTHER: ActorKind
CLAIM_STATE_UNSPECIFIED: ClaimState
CLAIM_STATE_ACTIVE: ClaimState
CLAIM_STATE_RETRACTED: ClaimState
CLAIM_CHANGE_UNSPECIFIED: ClaimChange
CLAIM_CHANGE_CREATED: ClaimChange
CLAIM_CHANGE_UPDATED: ClaimChange
CLAIM_CHANGE_RETRACTED: ClaimChange
CLAIM_CHANGE_RESTORED: ClaimChange

class Actor(_message.Message):
    __slots__ = ("id", "display_name", "aliases", "kind", "description", "claim_count", "create_time", "update_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CLAIM_COUNT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    display_name: str
    aliases: _containers.RepeatedScalarFieldContainer[str]
    kind: ActorKind
    description: str
    claim_count: int
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., display_name: _Optional[str] = ..., aliases: _Optional[_Iterable[str]] = ..., kind: _Optional[_Union[ActorKind, str]] = ..., description: _Optional[str] = ..., claim_count: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Topic(_message.Message):
    __slots__ = ("id", "display_name", "parent_id", "claim_count")
    ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    PARENT_ID_FIELD_NUMBER: _ClassVar[int]
    CLAIM_COUNT_FIELD_NUMBER: _ClassVar[int]
    id: str
    display_name: str
    parent_id: str
    claim_count: int
    def __init__(self, id: _Optional[str] = ..., display_name: _Optional[str] = ..., parent_id: _Optional[str] = ..., claim_count: _Optional[int] = ...) -> None: ...

class Source(_message.Message):
    __slots__ = ("url", "title", "publisher", "published_at")
    URL_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    PUBLISHER_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_AT_FIELD_NUMBER: _ClassVar[int]
    url: str
    title: str
    publisher: str
    published_at: _timestamp_pb2.Timestamp
    def __init__(self, url: _Optional[str] = ..., title: _Optional[str] = ..., publisher: _Optional[str] = ..., published_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Claim(_message.Message):
    __slots__ = ("id", "actor_id", "topic_ids", "text", "stated_at", "source", "language", "confidence", "state", "revision", "create_time", "update_time", "referents")
    ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_ID_FIELD_NUMBER: _ClassVar[int]
    TOPIC_IDS_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    STATED_AT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    REFERENTS_FIELD_NUMBER: _ClassVar[int]
    id: str
    actor_id: str
    topic_ids: _containers.RepeatedScalarFieldContainer[str]
    text: str
    stated_at: _timestamp_pb2.Timestamp
    source: Source
    language: str
    confidence: float
    state: ClaimState
    revision: int
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    referents: ClaimReferents
    def __init__(self, id: _Optional[str] = ..., actor_id: _Optional[str] = ..., topic_ids: _Optional[_Iterable[str]] = ..., text: _Optional[str] = ..., stated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., source: _Optional[_Union[Source, _Mapping]] = ..., language: _Optional[str] = ..., confidence: _Optional[float] = ..., state: _Optional[_Union[ClaimState, str]] = ..., revision: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., referents: _Optional[_Union[ClaimReferents, _Mapping]] = ...) -> None: ...

class ClaimReferents(_message.Message):
    __slots__ = ("actor", "topics")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    TOPICS_FIELD_NUMBER: _ClassVar[int]
    actor: ActorSummary
    topics: _containers.RepeatedCompositeFieldContainer[TopicSummary]
    def __init__(self, actor: _Optional[_Union[ActorSummary, _Mapping]] = ..., topics: _Optional[_Iterable[_Union[TopicSummary, _Mapping]]] = ...) -> None: ...

class ActorSummary(_message.Message):
    __slots__ = ("id", "display_name", "kind")
    ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    id: str
    display_name: str
    kind: ActorKind
    def __init__(self, id: _Optional[str] = ..., display_name: _Optional[str] = ..., kind: _Optional[_Union[ActorKind, str]] = ...) -> None: ...

class TopicSummary(_message.Message):
    __slots__ = ("id", "display_name")
    ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    id: str
    display_name: str
    def __init__(self, id: _Optional[str] = ..., display_name: _Optional[str] = ...) -> None: ...

class ClaimRevision(_message.Message):
    __slots__ = ("revision", "claim", "change", "record_time", "request_id", "reason")
    REVISION_FIELD_NUMBER: _ClassVar[int]
    CLAIM_FIELD_NUMBER: _ClassVar[int]
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    RECORD_TIME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    revision: int
    claim: Claim
    change: ClaimChange
    record_time: _timestamp_pb2.Timestamp
    request_id: str
    reason: str
    def __init__(self, revision: _Optional[int] = ..., claim: _Optional[_Union[Claim, _Mapping]] = ..., change: _Optional[_Union[ClaimChange, str]] = ..., record_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., request_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class IndexRecord(_message.Message):
    __slots__ = ("actor", "topic", "claim")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    CLAIM_FIELD_NUMBER: _ClassVar[int]
    actor: Actor
    topic: Topic
    claim: Claim
    def __init__(self, actor: _Optional[_Union[Actor, _Mapping]] = ..., topic: _Optional[_Union[Topic, _Mapping]] = ..., claim: _Optional[_Union[Claim, _Mapping]] = ...) -> None: ...
