import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from panoptic.v1 import field_rules_pb2 as _field_rules_pb2
from panoptic.v1 import resources_pb2 as _resources_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ClaimView(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CLAIM_VIEW_UNSPECIFIED: _ClassVar[ClaimView]
    CLAIM_VIEW_BASIC: _ClassVar[ClaimView]
    CLAIM_VIEW_FULL: _ClassVar[ClaimView]

class ClaimOrder(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CLAIM_ORDER_UNSPECIFIED: _ClassVar[ClaimOrder]
    CLAIM_ORDER_STATED_AT_DESC: _ClassVar[ClaimOrder]
    CLAIM_ORDER_STATED_AT_ASC: _ClassVar[ClaimOrder]

class TimelineInterval(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TIMELINE_INTERVAL_UNSPECIFIED: _ClassVar[TimelineInterval]
    TIMELINE_INTERVAL_DAY: _ClassVar[TimelineInterval]
    TIMELINE_INTERVAL_WEEK: _ClassVar[TimelineInterval]
    TIMELINE_INTERVAL_MONTH: _ClassVar[TimelineInterval]
    TIMELINE_INTERVAL_YEAR: _ClassVar[TimelineInterval]
CLAIM_VIEW_UNSPECIFIED: ClaimView
CLAIM_VIEW_BASIC: ClaimView
CLAIM_VIEW_FULL: ClaimView
CLAIM_ORDER_UNSPECIFIED: ClaimOrder
CLAIM_ORDER_STATED_AT_DESC: ClaimOrder
CLAIM_ORDER_STATED_AT_ASC: ClaimOrder
TIMELINE_INTERVAL_UNSPECIFIED: TimelineInterval
TIMELINE_INTERVAL_DAY: TimelineInterval
TIMELINE_INTERVAL_WEEK: TimelineInterval
TIMELINE_INTERVAL_MONTH: TimelineInterval
TIMELINE_INTERVAL_YEAR: TimelineInterval

class GetClaimRequest(_message.Message):
    __slots__ = ("claim_id", "consistency_token", "view")
    CLAIM_ID_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_TOKEN_FIELD_NUMBER: _ClassVar[int]
    VIEW_FIELD_NUMBER: _ClassVar[int]
    claim_id: str
    consistency_token: str
    view: ClaimView
    def __init__(self, claim_id: _Optional[str] = ..., consistency_token: _Optional[str] = ..., view: _Optional[_Union[ClaimView, str]] = ...) -> None: ...

class ListClaimsRequest(_message.Message):
    __slots__ = ("actor_id", "topic_id", "stated_after", "stated_before", "language", "show_retracted", "order_by", "page_size", "page_token", "consistency_token", "view")
    ACTOR_ID_FIELD_NUMBER: _ClassVar[int]
    TOPIC_ID_FIELD_NUMBER: _ClassVar[int]
    STATED_AFTER_FIELD_NUMBER: _ClassVar[int]
    STATED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    SHOW_RETRACTED_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_TOKEN_FIELD_NUMBER: _ClassVar[int]
    VIEW_FIELD_NUMBER: _ClassVar[int]
    actor_id: str
    topic_id: str
    stated_after: _timestamp_pb2.Timestamp
    stated_before: _timestamp_pb2.Timestamp
    language: str
    show_retracted: bool
    order_by: str
    page_size: int
    page_token: str
    consistency_token: str
    view: ClaimView
    def __init__(self, actor_id: _Optional[str] = ..., topic_id: _Optional[str] = ..., stated_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., stated_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., language: _Optional[str] = ..., show_retracted: _Optional[bool] = ..., order_by: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., consistency_token: _Optional[str] = ..., view: _Optional[_Union[ClaimView, str]] = ...) -> None: ...

class ListClaimsResponse(_message.Message):
    __slots__ = ("claims", "next_page_token")
    CLAIMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    claims: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Claim]
    next_page_token: str
    def __init__(self, claims: _Optional[_Iterable[_Union[_resources_pb2.Claim, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class SearchClaimsRequest(_message.Message):
    __slots__ = ("query", "actor_id", "topic_id", "stated_after", "stated_before", "language", "show_retracted", "page_size", "page_token", "consistency_token", "view")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    ACTOR_ID_FIELD_NUMBER: _ClassVar[int]
    TOPIC_ID_FIELD_NUMBER: _ClassVar[int]
    STATED_AFTER_FIELD_NUMBER: _ClassVar[int]
    STATED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    SHOW_RETRACTED_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_TOKEN_FIELD_NUMBER: _ClassVar[int]
    VIEW_FIELD_NUMBER: _ClassVar[int]
    query: str
    actor_id: str
    topic_id: str
    stated_after: _timestamp_pb2.Timestamp
    stated_before: _timestamp_pb2.Timestamp
    language: str
    show_retracted: bool
    page_size: int
    page_token: str
    consistency_token: str
    view: ClaimView
    def __init__(self, query: _Optional[str] = ..., actor_id: _Optional[str] = ..., topic_id: _Optional[str] = ..., stated_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., stated_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., language: _Optional[str] = ..., show_retracted: _Optional[bool] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., consistency_token: _Optional[str] = ..., view: _Optional[_Union[ClaimView, str]] = ...) -> None: ...

class SearchResult(_message.Message):
    __slots__ = ("claim", "score", "highlight")
    CLAIM_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    HIGHLIGHT_FIELD_NUMBER: _ClassVar[int]
    claim: _resources_pb2.Claim
    score: float
    highlight: str
    def __init__(self, claim: _Optional[_Union[_resources_pb2.Claim, _Mapping]] = ..., score: _Optional[float] = ..., highlight: _Optional[str] = ...) -> None: ...

class SearchClaimsResponse(_message.Message):
    __slots__ = ("results", "next_page_token")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[SearchResult]
    next_page_token: str
    def __init__(self, results: _Optional[_Iterable[_Union[SearchResult, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListClaimRevisionsRequest(_message.Message):
    __slots__ = ("claim_id", "page_size", "page_token", "consistency_token")
    CLAIM_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_TOKEN_FIELD_NUMBER: _ClassVar[int]
    claim_id: str
    page_size: int
    page_token: str
    consistency_token: str
    def __init__(self, claim_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., consistency_token: _Optional[str] = ...) -> None: ...

class ListClaimRevisionsResponse(_message.Message):
    __slots__ = ("revisions", "next_page_token")
    REVISIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    revisions: _containers.RepeatedCompositeFieldContainer[_resources_pb2.ClaimRevision]
    next_page_token: str
    def __init__(self, revisions: _Optional[_Iterable[_Union[_resources_pb2.ClaimRevision, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetActorRequest(_message.Message):
    __slots__ = ("actor_id", "consistency_token")
    ACTOR_ID_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_TOKEN_FIELD_NUMBER: _ClassVar[int]
    actor_id: str
    consistency_token: str
    def __init__(self, actor_id: _Optional[str] = ..., consistency_token: _Optional[str] = ...) -> None: ...

class ListActorsRequest(_message.Message):
    __slots__ = ("query", "page_size", "page_token", "consistency_token")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_TOKEN_FIELD_NUMBER: _ClassVar[int]
    query: str
    page_size: int
    page_token: str
    consistency_token: str
    def __init__(self, query: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., consistency_token: _Optional[str] = ...) -> None: ...

class ListActorsResponse(_message.Message):
    __slots__ = ("actors", "next_page_token")
    ACTORS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    actors: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Actor]
    next_page_token: str
    def __init__(self, actors: _Optional[_Iterable[_Union[_resources_pb2.Actor, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetActorTimelineRequest(_message.Message):
    __slots__ = ("actor_id", "topic_id", "interval", "stated_after", "stated_before", "sample_size", "consistency_token")
    ACTOR_ID_FIELD_NUMBER: _ClassVar[int]
    TOPIC_ID_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    STATED_AFTER_FIELD_NUMBER: _ClassVar[int]
    STATED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_SIZE_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_TOKEN_FIELD_NUMBER: _ClassVar[int]
    actor_id: str
    topic_id: str
    interval: TimelineInterval
    stated_after: _timestamp_pb2.Timestamp
    stated_before: _timestamp_pb2.Timestamp
    sample_size: int
    consistency_token: str
    def __init__(self, actor_id: _Optional[str] = ..., topic_id: _Optional[str] = ..., interval: _Optional[_Union[TimelineInterval, str]] = ..., stated_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., stated_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sample_size: _Optional[int] = ..., consistency_token: _Optional[str] = ...) -> None: ...

class TimelineBucket(_message.Message):
    __slots__ = ("start_time", "claim_count", "sample_claims")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    CLAIM_COUNT_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_CLAIMS_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    claim_count: int
    sample_claims: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Claim]
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., claim_count: _Optional[int] = ..., sample_claims: _Optional[_Iterable[_Union[_resources_pb2.Claim, _Mapping]]] = ...) -> None: ...

class ActorTimeline(_message.Message):
    __slots__ = ("actor_id", "topic_id", "interval", "buckets")
    ACTOR_ID_FIELD_NUMBER: _ClassVar[int]
    TOPIC_ID_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    BUCKETS_FIELD_NUMBER: _ClassVar[int]
    actor_id: str
    topic_id: str
    interval: TimelineInterval
    buckets: _containers.RepeatedCompositeFieldContainer[TimelineBucket]
    def __init__(self, actor_id: _Optional[str] = ..., topic_id: _Optional[str] = ..., interval: _Optional[_Union[TimelineInterval, str]] = ..., buckets: _Optional[_Iterable[_Union[TimelineBucket, _Mapping]]] = ...) -> None: ...

class GetTopicRequest(_message.Message):
    __slots__ = ("topic_id", "consistency_token")
    TOPIC_ID_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_TOKEN_FIELD_NUMBER: _ClassVar[int]
    topic_id: str
    consistency_token: str
    def __init__(self, topic_id: _Optional[str] = ..., consistency_token: _Optional[str] = ...) -> None: ...

class ListTopicsRequest(_message.Message):
    __slots__ = ("parent_id", "page_size", "page_token", "consistency_token")
    PARENT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_TOKEN_FIELD_NUMBER: _ClassVar[int]
    parent_id: str
    page_size: int
    page_token: str
    consistency_token: str
    def __init__(self, parent_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., consistency_token: _Optional[str] = ...) -> None: ...

class ListTopicsResponse(_message.Message):
    __slots__ = ("topics", "next_page_token")
    TOPICS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    topics: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Topic]
    next_page_token: str
    def __init__(self, topics: _Optional[_Iterable[_Union[_resources_pb2.Topic, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class BatchGetActorsRequest(_message.Message):
    __slots__ = ("ids", "consistency_token")
    IDS_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    consistency_token: str
    def __init__(self, ids: _Optional[_Iterable[str]] = ..., consistency_token: _Optional[str] = ...) -> None: ...

class BatchGetActorsResponse(_message.Message):
    __slots__ = ("actors",)
    ACTORS_FIELD_NUMBER: _ClassVar[int]
    actors: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Actor]
    def __init__(self, actors: _Optional[_Iterable[_Union[_resources_pb2.Actor, _Mapping]]] = ...) -> None: ...

class BatchGetTopicsRequest(_message.Message):
    __slots__ = ("ids", "consistency_token")
    IDS_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    consistency_token: str
    def __init__(self, ids: _Optional[_Iterable[str]] = ..., consistency_token: _Optional[str] = ...) -> None: ...

class BatchGetTopicsResponse(_message.Message):
    __slots__ = ("topics",)
    TOPICS_FIELD_NUMBER: _ClassVar[int]
    topics: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Topic]
    def __init__(self, topics: _Optional[_Iterable[_Union[_resources_pb2.Topic, _Mapping]]] = ...) -> None: ...
