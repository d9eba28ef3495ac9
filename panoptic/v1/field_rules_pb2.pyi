from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor
FIELD_RULES_FIELD_NUMBER: _ClassVar[int]
field_rules: _descriptor.FieldDescriptor

class FieldRules(_message.Message):
    __slots__ = ("pattern", "minimum", "maximum", "max_length", "format", "after", "max_items")
    PATTERN_FIELD_NUMBER: _ClassVar[int]
    MINIMUM_FIELD_NUMBER: _ClassVar[int]
    MAXIMUM_FIELD_NUMBER: _ClassVar[int]
    MAX_LENGTH_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    MAX_ITEMS_FIELD_NUMBER: _ClassVar[int]
    pattern: str
    minimum: int
    maximum: int
    max_length: int
    format: str
    after: str
    max_items: int
    def __init__(self, pattern: _Optional[str] = ..., minimum: _Optional[int] = ..., maximum: _Optional[int] = ..., max_length: _Optional[int] = ..., format: _Optional[str] = ..., after: _Optional[str] = ..., max_items: _Optional[int] = ...) -> None: ...
