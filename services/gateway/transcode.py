"""Query strings to request messages, response messages to proto3 JSON, and `fields=` masks.

Everything works on descriptors alone (dynamic messages), so the same code serves whatever
API reflection describes. Query parameters are accepted by JSON name and by proto name, nested
fields by dotted path (`source.publishedAt`), repeated fields by repeating the parameter, enums
by name (with or without their prefix, any case) or number, timestamps and durations in their
JSON form (RFC 3339, `1.5s`). A parameter that is unknown, malformed or repeated where it may
not be, or a field given by both its names, is a `QueryError` naming it, with a did-you-mean for
unknown names.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import functools
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from google.protobuf import descriptor, descriptor_pool, json_format, message, message_factory
from google.protobuf.internal import type_checkers

FieldDescriptor = descriptor.FieldDescriptor

# Query parameters the gateway itself reads; no request field can be set by these names.
FIELDS_PARAMETER = "fields"
SYSTEM_PARAMETERS = (FIELDS_PARAMETER,)
# Well-known types whose JSON form is a single string, so one query value can set them.
_STRING_WKT = frozenset(
    {"google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask"}
)
_WRAPPERS = frozenset(
    f"google.protobuf.{name}Value"
    for name in ("Double", "Float", "Int64", "UInt64", "Int32", "UInt32", "Bool", "String", "Bytes")
)
_INTEGER = re.compile(r"[-+]?[0-9]+")
_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
_BOOLEANS = {"true": True, "false": False, "1": True, "0": False}
# How deep query parameters reach into nested messages.
MAX_DEPTH = 4


class QueryError(Exception):
    """A query parameter (or path value) is unknown or malformed."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.message = message


@dataclass(frozen=True, slots=True)
class FieldSlot:
    """A request field a query parameter can set, reached through `path` from the request."""

    path: tuple[FieldDescriptor, ...]
    json_name: str
    proto_name: str

    @property
    def leaf(self) -> FieldDescriptor:
        """The field the value lands in."""
        return self.path[-1]

    @property
    def repeated(self) -> bool:
        """Whether the parameter may be given more than once."""
        return bool(self.leaf.is_repeated)


def query_slots(message_type: descriptor.Descriptor) -> list[FieldSlot]:
    """Every field of a request that one query parameter can set, nested ones by dotted path."""
    slots: list[FieldSlot] = []

    def walk(
        current: descriptor.Descriptor,
        prefix: tuple[FieldDescriptor, ...],
        seen: tuple[str, ...],
    ) -> None:
        for field in current.fields:
            path = (*prefix, field)
            repeated = field.is_repeated
            sub = field.message_type
            if sub is None or sub.full_name in _STRING_WKT or sub.full_name in _WRAPPERS:
                if repeated and sub is not None and sub.GetOptions().map_entry:
                    continue
                slots.append(
                    FieldSlot(
                        path,
                        ".".join(f.json_name for f in path),
                        ".".join(f.name for f in path),
                    )
                )
            elif not repeated and len(path) < MAX_DEPTH and sub.full_name not in seen:
                walk(sub, path, (*seen, sub.full_name))

    walk(message_type, (), (message_type.full_name,))
    return slots


def suggest(name: str, candidates: Iterable[str]) -> str | None:
    """The closest candidate to a mistyped name, if one is close enough."""
    options = list(candidates)
    folded = {_fold(option): option for option in options}
    if _fold(name) in folded:
        return folded[_fold(name)]
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    return close[0] if close else None


def _fold(name: str) -> str:
    return name.replace("_", "").lower()


class RequestTranscoder:
    """Builds one method's request message from path captures and query parameters."""

    def __init__(self, message_type: descriptor.Descriptor, bound_by_path: Iterable[str]) -> None:
        self.message_type = message_type
        self.message_class = message_factory.GetMessageClass(message_type)
        self.slots = query_slots(message_type)
        self.bound_by_path = frozenset(bound_by_path)
        self._by_name: dict[str, FieldSlot] = {}
        for slot in self.slots:
            self._by_name[slot.json_name] = slot
            self._by_name[slot.proto_name] = slot
        self.parameter_names = tuple(
            slot.json_name for slot in self.slots if slot.proto_name not in self.bound_by_path
        )

    def build(
        self, captures: Mapping[str, str], query: Sequence[tuple[str, str]]
    ) -> message.Message:
        """The request: path values first, then query parameters; `QueryError` on bad input."""
        request = self.message_class()
        for field_path, value in captures.items():
            slot = self._by_name[field_path]
            _assign(request, slot, value, slot.json_name)
        # Grouped by field, not by spelling: `actorId=a&actor_id=b` names one field twice.
        grouped: dict[str, tuple[FieldSlot, list[str], list[str]]] = {}
        for name, value in query:
            if name in SYSTEM_PARAMETERS:
                continue
            found = self._by_name.get(name)
            if found is None:
                raise QueryError(name, self._unknown(name))
            if found.proto_name in self.bound_by_path:
                raise QueryError(name, f"'{name}' is set by the path; leave it out of the query")
            _, names, values = grouped.setdefault(found.proto_name, (found, [], []))
            if name not in names:
                names.append(name)
            values.append(value)
        for slot, names, values in grouped.values():
            name = names[0]
            if len(names) > 1:
                raise QueryError(
                    slot.json_name,
                    f"'{names[0]}' and '{names[1]}' name the same field; give it by one name",
                )
            if len(values) > 1 and not slot.repeated:
                raise QueryError(name, f"'{name}' takes one value but was given {len(values)}")
            for value in values:
                _assign(request, slot, value, name)
        return request

    def _unknown(self, name: str) -> str:
        text = f"unknown query parameter '{name}'"
        guess = suggest(name, (*self.parameter_names, *SYSTEM_PARAMETERS))
        if guess is not None:
            return f"{text}; did you mean '{guess}'?"
        shown = ", ".join((*self.parameter_names, *SYSTEM_PARAMETERS)) or "none"
        return f"{text}; this route accepts: {shown}"


def _assign(request: message.Message, slot: FieldSlot, text: str, parameter: str) -> None:
    target: Any = request
    for field in slot.path[:-1]:
        target = getattr(target, field.name)
    field = slot.leaf
    if field.message_type is not None:
        container = getattr(target, field.name)
        item = container.add() if slot.repeated else container
        _parse_wkt(item, field.message_type, text, parameter)
        return
    value = scalar_value(field, text, parameter)
    if slot.repeated:
        getattr(target, field.name).append(value)
    else:
        setattr(target, field.name, value)


def _parse_wkt(
    item: message.Message, message_type: descriptor.Descriptor, text: str, parameter: str
) -> None:
    full_name = message_type.full_name
    if full_name in _WRAPPERS:
        value_field = message_type.fields_by_name["value"]
        setattr(item, "value", scalar_value(value_field, text, parameter))  # noqa: B010
        return
    try:
        json_format.ParseDict(text, item)  # type: ignore[arg-type]  # a WKT's JSON is a string
    except (json_format.ParseError, ValueError, TypeError):
        expected = {
            "google.protobuf.Timestamp": "an RFC 3339 timestamp such as 2024-05-01T12:30:00Z",
            "google.protobuf.Duration": "a duration in seconds such as 1.5s",
            "google.protobuf.FieldMask": "comma-separated field paths",
        }[full_name]
        raise QueryError(parameter, f"'{parameter}' must be {expected}") from None


def scalar_value(field: FieldDescriptor, text: str, parameter: str) -> Any:
    """A query value converted to the field's Python type, or a `QueryError` naming it."""
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return text
    if kind == FieldDescriptor.TYPE_BOOL:
        value = _BOOLEANS.get(text.lower())
        if value is None:
            raise QueryError(parameter, f"'{parameter}' must be true or false")
        return value
    if kind in _RANGES:
        low, high = _RANGES[kind]
        if not _INTEGER.fullmatch(text) or not low <= int(text) <= high:
            raise QueryError(parameter, f"'{parameter}' must be an integer from {low} to {high}")
        return int(text)
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        try:
            return float(text)
        except ValueError:
            raise QueryError(parameter, f"'{parameter}' must be a number") from None
    if kind == FieldDescriptor.TYPE_ENUM and field.enum_type is not None:
        return _enum_number(field.enum_type, text, parameter)
    if kind == FieldDescriptor.TYPE_BYTES:
        try:
            standard = text.replace("-", "+").replace("_", "/")  # either alphabet, as JSON
            return base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise QueryError(parameter, f"'{parameter}' must be base64") from None
    raise QueryError(parameter, f"'{parameter}' cannot be set from a query string")


def _enum_number(enum_type: descriptor.EnumDescriptor, text: str, parameter: str) -> int:
    value = enum_type.values_by_name.get(text)
    if value is not None:
        return int(value.number)
    names = [v.name for v in enum_type.values]
    prefix = _common_prefix(names)
    wanted = text.upper()
    for candidate in enum_type.values:
        if candidate.name == wanted or candidate.name == prefix + wanted:
            return int(candidate.number)
    if _INTEGER.fullmatch(text) and int(text) in enum_type.values_by_number:
        return int(text)
    shown = ", ".join(name for name in names if not name.endswith("_UNSPECIFIED"))
    raise QueryError(parameter, f"'{parameter}' must be one of {shown}")


def _common_prefix(names: Sequence[str]) -> str:
    """The enum's value prefix (`TIMELINE_INTERVAL_`), as buf lint requires it."""
    if len(names) < 2:
        return ""
    first, last = min(names), max(names)
    size = 0
    while size < min(len(first), len(last)) and first[size] == last[size]:
        size += 1
    return first[: first.rfind("_", 0, size) + 1] if size else ""


# ---------------------------------------------------------------------------------------------
# Responses


class ResponseRenderer:
    """Turns one method's response messages into proto3 JSON values.

    The result equals `json_format.MessageToDict(response,
    always_print_fields_with_no_presence=True)` (a unit test holds it to that), but walks a plan
    compiled once per message type instead of inspecting every field of every response: the
    gateway spends its time on this more than on anything else it does itself. Fields without
    presence are always written, as grpc-gateway does; unset optional messages (a timestamp that
    is not set) are left out, so clients can tell "absent" from "zero".
    """

    def __init__(
        self, message_type: descriptor.Descriptor, pool: descriptor_pool.DescriptorPool
    ) -> None:
        self.message_type = message_type
        self.pool = pool
        self._plan = _plan_for(message_type, pool, {})

    def to_json(self, response: message.Message) -> Any:
        """The response in the proto3 JSON mapping."""
        if self._plan is None:  # the response is itself a well-known type
            return json_format.MessageToDict(
                response, always_print_fields_with_no_presence=True, descriptor_pool=self.pool
            )
        return _render(response, self._plan)


# A field's rendering: (proto name, JSON name, presence, repeated, map, converter).
_Step = tuple[str, str, bool, bool, bool, Callable[[Any], Any]]
_NAN, _INFINITY, _NEG_INFINITY = "NaN", "Infinity", "-Infinity"
_INT64_KINDS = frozenset(
    {
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_SFIXED64,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_FIXED64,
    }
)


def _render(value: message.Message, plan: list[_Step]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, json_name, presence, repeated, is_map, convert in plan:
        if presence and not value.HasField(name):
            continue
        field_value = getattr(value, name)
        if is_map:
            out[json_name] = {str(k): convert(v) for k, v in field_value.items()}
        elif repeated:
            out[json_name] = [convert(item) for item in field_value]
        else:
            out[json_name] = convert(field_value)
    return out


def _plan_for(
    message_type: descriptor.Descriptor,
    pool: descriptor_pool.DescriptorPool,
    plans: dict[str, list[_Step]],
) -> list[_Step] | None:
    """The rendering plan of a message type; None for well-known types (json_format's job)."""
    if message_type.full_name.startswith("google.protobuf."):
        return None
    if message_type.full_name in plans:
        return plans[message_type.full_name]
    plan: list[_Step] = []
    plans[message_type.full_name] = plan  # filled in place, so recursive types terminate
    for field in message_type.fields:
        is_map = bool(field.message_type is not None and field.message_type.GetOptions().map_entry)
        target = (
            field.message_type.fields_by_name["value"] if is_map and field.message_type else field
        )
        convert = _converter(target, pool, plans)
        presence = bool(field.has_presence) and not field.is_repeated
        plan.append((field.name, field.json_name, presence, field.is_repeated, is_map, convert))
    return plan


def _converter(
    field: FieldDescriptor, pool: descriptor_pool.DescriptorPool, plans: dict[str, list[_Step]]
) -> Callable[[Any], Any]:
    kind = field.type
    if field.message_type is not None:
        if field.message_type.full_name == "google.protobuf.Timestamp":
            return _timestamp
        plan = _plan_for(field.message_type, pool, plans)
        if plan is None:
            return lambda value: json_format.MessageToDict(
                value, always_print_fields_with_no_presence=True, descriptor_pool=pool
            )
        return lambda value: _render(value, plan)
    if field.enum_type is not None:
        if field.enum_type.full_name == "google.protobuf.NullValue":
            return lambda value: None
        names = {number: value.name for number, value in field.enum_type.values_by_number.items()}
        return lambda value: names.get(value, value)
    if kind in _INT64_KINDS:
        return str
    if kind == FieldDescriptor.TYPE_BYTES:
        return lambda value: base64.b64encode(value).decode()
    if kind == FieldDescriptor.TYPE_DOUBLE:
        return _double
    if kind == FieldDescriptor.TYPE_FLOAT:
        return _float
    return _identity


def _identity(value: Any) -> Any:
    return value


def _double(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return _NAN if math.isnan(value) else (_INFINITY if value > 0 else _NEG_INFINITY)


def _float(value: float) -> float | str:
    if math.isfinite(value):
        return type_checkers.ToShortestFloat(value)
    return _double(value)


def _timestamp(value: Any) -> str:
    """RFC 3339 in UTC with 0, 3, 6 or 9 fractional digits, exactly as json_format writes it.

    Put together from ready-made pieces (the day's date, cached; the time of day and the
    milliseconds from tables): a page of claims has a hundred times to write, and formatting
    each field anew took a seventh of the gateway's time on a ListClaims.
    """
    seconds: int = value.seconds
    nanos: int = value.nanos
    day, second = divmod(seconds, 86_400)
    minute, second = divmod(second, 60)
    text: str = _date(day) + _MINUTES[minute] + _SECONDS[second]
    if nanos == 0:
        return text + "Z"
    if nanos % 1_000_000 == 0:
        return text + _MILLIS[nanos // 1_000_000]
    if nanos % 1000 == 0:
        return f"{text}.{nanos // 1000:06d}Z"
    return f"{text}.{nanos:09d}Z"


@functools.lru_cache(maxsize=4096)
def _date(day: int) -> str:
    """`YYYY-MM-DDT` of a day counted from 1970-01-01 (negative before it)."""
    t = time.gmtime(day * 86_400)
    return f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T"


_MINUTES: Final = tuple(f"{minute // 60:02d}:{minute % 60:02d}:" for minute in range(24 * 60))
_SECONDS: Final = tuple(f"{second:02d}" for second in range(60))
_MILLIS: Final = tuple(f".{millis:03d}Z" for millis in range(1000))


MaskTree = dict[str, "MaskTree | None"]


def parse_field_mask(values: Sequence[str], message_type: descriptor.Descriptor) -> MaskTree | None:
    """The `fields=` parameter as a tree of JSON names; None means the whole response.

    Paths are comma-separated, by JSON or proto name, dotted into nested and repeated messages
    (`claims.id,claims.statedAt,nextPageToken`), as Google's partial responses.
    """
    tree: MaskTree = {}
    paths = [path.strip() for value in values for path in value.split(",") if path.strip()]
    for path in paths:
        if path == "*":
            continue  # the whole response, once every other path is known to be valid
        node = tree
        current: descriptor.Descriptor | None = message_type
        walked: list[str] = []
        parts = path.split(".")
        for position, part in enumerate(parts):
            field = _field_by_any_name(current, part) if current is not None else None
            if field is None:
                raise QueryError(FIELDS_PARAMETER, _unknown_mask_path(path, walked, current, part))
            walked.append(field.json_name)
            last = position == len(parts) - 1
            sub = field.message_type
            opaque = sub is None or sub.GetOptions().map_entry or sub.full_name in _STRING_WKT
            if last:
                node[field.json_name] = None
            else:
                existing = node.get(field.json_name, {})
                if existing is None:
                    # An ancestor is already selected whole: the rest of the path is still
                    # checked, into a tree that is thrown away.
                    node = {}
                else:
                    node[field.json_name] = existing
                    node = existing
                current = None if opaque else sub
    return None if not paths or "*" in paths else tree


def field_mask_pattern(message_type: descriptor.Descriptor) -> str:
    """A regular expression matching exactly the `fields=` values `parse_field_mask` accepts.

    Python's `str.strip` and the pattern's `\\s` agree on what whitespace is. Recursive messages
    are followed to `MAX_DEPTH` levels (the API has none).
    """
    item = f"\\s*(?:\\*|{_mask_paths(message_type, (message_type.full_name,))})?\\s*"
    return f"^{item}(?:,{item})*$"


def _mask_paths(message_type: descriptor.Descriptor, seen: tuple[str, ...]) -> str:
    choices = []
    for field in message_type.fields:
        names = "|".join(re.escape(name) for name in dict.fromkeys((field.json_name, field.name)))
        sub = field.message_type
        if (
            sub is None
            or sub.GetOptions().map_entry
            or sub.full_name in _STRING_WKT
            or not sub.fields
            or sub.full_name in seen
            or len(seen) > MAX_DEPTH
        ):
            choices.append(f"(?:{names})")
        else:
            choices.append(f"(?:{names})(?:\\.{_mask_paths(sub, (*seen, sub.full_name))})?")
    return f"(?:{'|'.join(choices)})"


def _field_by_any_name(message_type: descriptor.Descriptor, name: str) -> FieldDescriptor | None:
    for field in message_type.fields:
        if name in (field.json_name, field.name):
            return field
    return None


def _unknown_mask_path(
    path: str, walked: list[str], current: descriptor.Descriptor | None, part: str
) -> str:
    text = f"fields: '{path}' names no field of the response"
    if current is None:
        return f"{text} ('{'.'.join(walked)}' has no subfields)"
    guess = suggest(part, [field.json_name for field in current.fields])
    if guess is not None:
        return f"{text}; did you mean '{'.'.join([*walked, guess])}'?"
    return text


def apply_field_mask(value: Any, tree: MaskTree | None) -> Any:
    """Keeps only the masked fields of a JSON value (lists are masked item by item)."""
    if tree is None:
        return value
    if isinstance(value, list):
        return [apply_field_mask(item, tree) for item in value]
    if not isinstance(value, dict):
        return value
    return {key: apply_field_mask(value[key], sub) for key, sub in tree.items() if key in value}
