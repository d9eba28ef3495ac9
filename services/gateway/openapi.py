"""The OpenAPI 3.1 document, generated from the same descriptors and routes the gateway serves.

Descriptions are the proto comments (when the descriptors carry source info); schemas follow the
proto3 JSON mapping the responses use (int64 as strings, timestamps as RFC 3339 strings, enums
by name); every operation documents the AIP-193 error shape. A parameter's schema states what the
service accepts, no more: its type's range, a REQUIRED field's non-empty value, and the field's
`(panoptic.v1.field_rules)` option (pattern, minimum, maximum, maxLength, format), so that every
request the document calls valid is served and every other one is refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.api import field_behavior_pb2
from google.protobuf import descriptor, descriptor_pool, message_factory

from panoptic.core.timestamps import RANGE_TEXT
from services.gateway.descriptors import LoadedDescriptors
from services.gateway.rules import GatewayRoute, PathTemplate
from services.gateway.transcode import FIELDS_PARAMETER, field_mask_pattern, query_slots

FieldDescriptor = descriptor.FieldDescriptor
JSON = dict[str, Any]

_INT32: JSON = {"minimum": -(2**31), "maximum": 2**31 - 1}
_UINT32: JSON = {"minimum": 0, "maximum": 2**32 - 1}
_SCALARS: Mapping[int, JSON] = {
    FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "format": "byte"},
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_DOUBLE: {"type": "number", "format": "double"},
    FieldDescriptor.TYPE_FLOAT: {"type": "number", "format": "float"},
    # OpenAPI's `format` is a hint validators need not enforce: the range is stated as well.
    FieldDescriptor.TYPE_INT32: {"type": "integer", "format": "int32", **_INT32},
    FieldDescriptor.TYPE_SINT32: {"type": "integer", "format": "int32", **_INT32},
    FieldDescriptor.TYPE_SFIXED32: {"type": "integer", "format": "int32", **_INT32},
    FieldDescriptor.TYPE_UINT32: {"type": "integer", "format": "int64", **_UINT32},
    FieldDescriptor.TYPE_FIXED32: {"type": "integer", "format": "int64", **_UINT32},
    # The proto3 JSON mapping writes 64-bit integers as strings.
    FieldDescriptor.TYPE_INT64: {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"},
    FieldDescriptor.TYPE_SINT64: {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"},
    FieldDescriptor.TYPE_SFIXED64: {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"},
    FieldDescriptor.TYPE_UINT64: {"type": "string", "format": "uint64", "pattern": "^[0-9]+$"},
    FieldDescriptor.TYPE_FIXED64: {"type": "string", "format": "uint64", "pattern": "^[0-9]+$"},
}
_WELL_KNOWN: Mapping[str, JSON] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$"},
    "google.protobuf.FieldMask": {"type": "string"},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array"},
    "google.protobuf.Any": {
        "type": "object",
        "required": ["@type"],
        "properties": {"@type": {"type": "string"}},
    },
    "google.protobuf.DoubleValue": {"type": ["number", "null"]},
    "google.protobuf.FloatValue": {"type": ["number", "null"]},
    "google.protobuf.Int64Value": {"type": ["string", "null"], "format": "int64"},
    "google.protobuf.UInt64Value": {"type": ["string", "null"], "format": "uint64"},
    "google.protobuf.Int32Value": {"type": ["integer", "null"], "format": "int32"},
    "google.protobuf.UInt32Value": {"type": ["integer", "null"], "format": "int64"},
    "google.protobuf.BoolValue": {"type": ["boolean", "null"]},
    "google.protobuf.StringValue": {"type": ["string", "null"]},
    "google.protobuf.BytesValue": {"type": ["string", "null"], "format": "byte"},
}
# Every time a request carries must lie from 0001-01-02T00:00:00Z up to, not including,
# 9999-12-31T00:00:00Z (the range PostgreSQL and Python both hold exactly), written as protobuf's
# JSON parser reads it: upper-case `T` and `Z`, at most 9 fractional digits. A pattern cannot do
# the arithmetic of offsets, so on the first and last two days of that range it accepts only
# times in UTC on the second and the second-to-last day; every time it matches is accepted.
# `(?!\n)$` ends it in ECMA-262 and Python alike (Python's `$` alone lets a final newline by).
_YEAR_2_TO_9998 = (
    "(?:000[2-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9])"
)
_MONTH_DAY = "(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
_DATE_INSIDE = (
    f"(?:{_YEAR_2_TO_9998}-{_MONTH_DAY}|0001-01-(?:0[3-9]|[12][0-9]|3[01])"
    f"|0001-(?:0[2-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])|9999-12-(?:0[1-9]|1[0-9]|2[0-9])"
    f"|9999-(?:0[1-9]|1[01])-(?:0[1-9]|[12][0-9]|3[01]))"
)
_TIME = "T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1,9})?"
_OFFSET = "(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
TIMESTAMP_PATTERN = f"^(?:{_DATE_INSIDE}{_TIME}{_OFFSET}|(?:0001-01-02|9999-12-30){_TIME}Z)(?!\\n)$"
_TIMESTAMP = "google.protobuf.Timestamp"
_ERROR_SCHEMA: JSON = {
    "type": "object",
    "description": "An error, per AIP-193.",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "status"],
            "properties": {
                "code": {"type": "integer", "description": "The HTTP status code."},
                "message": {"type": "string", "description": "What went wrong, for people."},
                "status": {
                    "type": "string",
                    "description": "The google.rpc.Code name.",
                    "enum": [code.name for code in grpc.StatusCode if code.name != "OK"],
                },
                "details": {
                    "type": "array",
                    "description": "google.rpc error details (ErrorInfo, BadRequest, RetryInfo, "
                    "...) in proto3 JSON, each with its @type.",
                    "items": {
                        "type": "object",
                        "required": ["@type"],
                        "properties": {"@type": {"type": "string"}},
                    },
                },
            },
        }
    },
}
_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_ERROR_RESPONSES = {
    "400": "A query parameter is unknown or malformed (the message names it).",
    "404": "The resource does not exist.",
    "414": "The request line is longer than the gateway takes (PANOPTIC_GATEWAY_MAX_URL_BYTES).",
    "429": "Too many requests from this client; see Retry-After.",
    "503": "The service is unavailable; retry shortly.",
    "504": "The request took too long.",
}
_RESPONSE_HEADERS: JSON = {
    "ETag": {"description": "A strong validator; send it back in If-None-Match.", "schema": {}},
    "Cache-Control": {"description": "How long the response may be reused.", "schema": {}},
    "X-Request-Id": {"description": "The request's id, as given or generated.", "schema": {}},
    "Server-Timing": {"description": "Time spent in the gateway and upstream.", "schema": {}},
}
for _header in _RESPONSE_HEADERS.values():
    _header["schema"] = {"type": "string"}


def openapi_path(template: PathTemplate) -> str:
    """The template as an OpenAPI path, e.g. `/v1/claims/{claim_id}` or `/v1/claims:search`."""
    parts: list[str] = [s if s is not None else "*" for s in template.segments]
    for capture in sorted(template.captures, key=lambda c: c.start, reverse=True):
        end = capture.end if capture.end is not None else len(parts)
        parts[capture.start : end] = ["{" + capture.field_path + "}"]
    path = "/" + "/".join(parts)
    return f"{path}:{template.verb}" if template.verb else path


class _Schemas:
    """Collects component schemas for the messages and enums the routes reach."""

    def __init__(self, comments: Mapping[str, str], rules: FieldRulesReader) -> None:
        self.comments = comments
        self.rules = rules
        self.components: dict[str, JSON] = {}

    def for_field(self, field: FieldDescriptor) -> JSON:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            schema: JSON = {"type": "object", "additionalProperties": self._single(value_field)}
        elif field.is_repeated:
            schema = {"type": "array", "items": self._single(field)}
        else:
            schema = self._single(field)
        description = self.comments.get(field.full_name)
        behaviors = _behaviors(field)
        if description:
            schema = {**schema, "description": description}
        if "OUTPUT_ONLY" in behaviors:
            schema = {**schema, "readOnly": True}
        return schema

    def parameter(self, field: FieldDescriptor, name: str, where: str, *, required: bool) -> JSON:
        """A path or query parameter setting `field`: its schema allows what the API accepts."""
        single = self._accepted(field, required=required)
        rules = self.rules.of(field)
        text = self.comments.get(field.full_name, "")
        if field.message_type is not None and field.message_type.full_name == _TIMESTAMP:
            text = f"{text}\n\nRFC 3339, {RANGE_TEXT}.".strip()
        parameter: JSON = {"name": name, "in": where, "required": required}
        if rules.after:
            # OpenAPI has no rule across parameters: stated for people, and for tools in `x-after`.
            assert field.containing_type is not None  # a field of a request message
            earlier = field.containing_type.fields_by_name[rules.after].json_name
            text = f"{text}\n\nWhen `{earlier}` is given too, this must be after it.".strip()
            parameter["x-after"] = earlier
        schema = single
        if field.is_repeated:
            schema = {"type": "array", "items": single}
            if required:
                schema["minItems"] = 1
            if rules.max_items is not None:
                schema["maxItems"] = rules.max_items
        return {**parameter, "description": text, "schema": schema}

    def _accepted(self, field: FieldDescriptor, *, required: bool) -> JSON:
        """One value of the field as the API accepts it, per its type, behaviour and rules."""
        if field.enum_type is not None:
            # A REQUIRED enum must be set, so its zero (`..._UNSPECIFIED`) value is refused.
            names = [v.name for v in field.enum_type.values if not (required and v.number == 0)]
            schema: JSON = {"type": "string", "enum": names}
        elif field.message_type is not None and field.message_type.full_name == _TIMESTAMP:
            schema = {"type": "string", "format": "date-time", "pattern": TIMESTAMP_PATTERN}
        else:
            schema = self._single(field)
            if required and field.type == FieldDescriptor.TYPE_STRING:
                schema["minLength"] = 1
        rules = self.rules.of(field)
        if rules.pattern:
            schema["pattern"] = rules.pattern
        if rules.format:
            schema["format"] = rules.format
        if rules.max_length is not None:
            schema["maxLength"] = rules.max_length
        if rules.minimum is not None:
            schema["minimum"] = max(rules.minimum, schema.get("minimum", rules.minimum))
        if rules.maximum is not None:
            schema["maximum"] = min(rules.maximum, schema.get("maximum", rules.maximum))
        return schema

    def _single(self, field: FieldDescriptor) -> JSON:
        if field.message_type is not None:
            return self.message_ref(field.message_type)
        if field.enum_type is not None:
            return self.enum_ref(field.enum_type)
        return dict(_SCALARS[field.type])

    def message_ref(self, message_type: descriptor.Descriptor) -> JSON:
        name = message_type.full_name
        if name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[name])
        if name not in self.components:
            self.components[name] = {}  # placeholder: recursion ends here
            properties = {field.json_name: self.for_field(field) for field in message_type.fields}
            schema: JSON = {"type": "object", "properties": properties}
            if self.comments.get(name):
                schema["description"] = self.comments[name]
            self.components[name] = schema
        return {"$ref": f"#/components/schemas/{name}"}

    def enum_ref(self, enum_type: descriptor.EnumDescriptor) -> JSON:
        name = enum_type.full_name
        if name not in self.components:
            values = [value.name for value in enum_type.values]
            lines = [
                f"- `{value.name}`: {self.comments[f'{name}.{value.name}']}"
                for value in enum_type.values
                if self.comments.get(f"{name}.{value.name}")
            ]
            schema: JSON = {"type": "string", "enum": values}
            text = "\n".join(filter(None, [self.comments.get(name, ""), *lines]))
            if text:
                schema["description"] = text
            self.components[name] = schema
        return {"$ref": f"#/components/schemas/{name}"}


# The option in which the API states the rules of its request fields (`field_rules.proto`).
FIELD_RULES_OPTION = "panoptic.v1.field_rules"


@dataclass(frozen=True)
class FieldRules:
    """What `(panoptic.v1.field_rules)` says of one field; empty where it says nothing."""

    pattern: str = ""
    minimum: int | None = None
    maximum: int | None = None
    max_length: int | None = None
    format: str = ""
    after: str = ""
    max_items: int | None = None


class FieldRulesReader:
    """Reads the rules option from the descriptors the gateway learned, as it reads the rest of
    the API, so that it imports no generated code: the option's value is decoded by the
    message types of the same descriptor pool. An API without the option has no rules."""

    def __init__(self, pool: descriptor_pool.DescriptorPool) -> None:
        try:
            self._extension: FieldDescriptor | None = pool.FindExtensionByName(FIELD_RULES_OPTION)
        except KeyError:
            self._extension = None
            return
        options_type = pool.FindMessageTypeByName("google.protobuf.FieldOptions")
        self._options_class = message_factory.GetMessageClass(options_type)

    def of(self, field: FieldDescriptor) -> FieldRules:
        if self._extension is None:
            return FieldRules()
        # Typed as Any: the stubs know extensions only as generated descriptors.
        options: Any = self._options_class.FromString(field.GetOptions().SerializeToString())
        if not options.HasExtension(self._extension):
            return FieldRules()
        rules: Any = options.Extensions[self._extension]
        # An API described before `max_items` existed has no such field.
        has_max_items = "max_items" in rules.DESCRIPTOR.fields_by_name and rules.HasField(
            "max_items"
        )
        return FieldRules(
            pattern=rules.pattern,
            minimum=rules.minimum if rules.HasField("minimum") else None,
            maximum=rules.maximum if rules.HasField("maximum") else None,
            max_length=rules.max_length if rules.HasField("max_length") else None,
            format=rules.format,
            after=rules.after,
            max_items=rules.max_items if has_max_items else None,
        )


def _behaviors(field: FieldDescriptor) -> set[str]:
    values = field.GetOptions().Extensions[field_behavior_pb2.field_behavior]
    return {field_behavior_pb2.FieldBehavior.Name(value) for value in values}


def build_openapi(
    routes: Sequence[GatewayRoute],
    loaded: LoadedDescriptors,
    *,
    title: str = "Panoptic API",
    version: str = "v1",
) -> JSON:
    """The whole document."""
    comments = loaded.comments
    schemas = _Schemas(comments, FieldRulesReader(loaded.pool))
    paths: dict[str, JSON] = {}
    operation_ids: dict[str, int] = {}
    services: dict[str, str] = {}
    for route in routes:
        method = route.method
        service = method.containing_service
        services[service.name] = comments.get(service.full_name, "")
        base_id = f"{service.name}_{method.name}"
        operation_ids[base_id] = operation_ids.get(base_id, 0) + 1
        operation_id = (
            base_id if operation_ids[base_id] == 1 else f"{base_id}{operation_ids[base_id]}"
        )
        text = comments.get(method.full_name, "")
        paths.setdefault(openapi_path(route.template), {})["get"] = {
            "operationId": operation_id,
            "summary": _first_sentence(text) or method.name,
            "description": text,
            "tags": [service.name],
            "parameters": _parameters(route, schemas, comments),
            "responses": _responses(route, schemas),
        }
    schemas.components["Error"] = _ERROR_SCHEMA
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "REST/JSON transcoded from the gRPC services' google.api.http "
            "bindings. Errors follow AIP-193; list and search methods page per AIP-158.",
        },
        "tags": [{"name": name, "description": text} for name, text in services.items()],
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": dict(sorted(schemas.components.items()))},
    }


def _parameters(route: GatewayRoute, schemas: _Schemas, comments: Mapping[str, str]) -> list[JSON]:
    """A route's parameters: its path captures, the query fields they leave, and `fields=`."""
    method = route.method
    bound = {capture.field_path for capture in route.template.captures}
    parameters: list[JSON] = []
    for capture in route.template.captures:
        field = _resolve(method.input_type, capture.field_path)
        parameter = schemas.parameter(field, capture.field_path, "path", required=True)
        parameter["description"] = comments.get(field.full_name, "")
        parameters.append(parameter)
    for slot in query_slots(method.input_type):
        if slot.proto_name in bound:
            continue
        required = len(slot.path) == 1 and "REQUIRED" in _behaviors(slot.leaf)
        parameter = schemas.parameter(slot.leaf, slot.json_name, "query", required=required)
        if slot.proto_name != slot.json_name:
            parameter["description"] += f"\n\nAlso accepted as `{slot.proto_name}`."
        if slot.repeated:
            parameter.update(style="form", explode=True)
        parameters.append(parameter)
    parameters.append(
        {
            "name": FIELDS_PARAMETER,
            "in": "query",
            "required": False,
            "description": "A partial response: comma-separated fields to return, by JSON "
            "name, dotted into nested and repeated messages (e.g. `claims.id,nextPageToken`).",
            "schema": {"type": "string", "pattern": field_mask_pattern(_masked_type(route))},
        }
    )
    return parameters


def _responses(route: GatewayRoute, schemas: _Schemas) -> JSON:
    """A route's answers: 200 with its message (or its `response_body` field), 304, errors."""
    output = route.method.output_type
    if route.response_body:
        response_schema = schemas.for_field(output.fields_by_name[route.response_body])
    else:
        response_schema = schemas.message_ref(output)
    responses: JSON = {
        "200": {
            "description": "OK",
            "headers": _RESPONSE_HEADERS,
            "content": {"application/json": {"schema": response_schema}},
        },
        "304": {"description": "Not modified since the ETag given in If-None-Match."},
    }
    for status, what in _ERROR_RESPONSES.items():
        responses[status] = {
            "description": what,
            "content": {"application/json": {"schema": _ERROR_REF}},
        }
    responses["default"] = {
        "description": "Any other error, in the same shape.",
        "content": {"application/json": {"schema": _ERROR_REF}},
    }
    return responses


def _resolve(message_type: descriptor.Descriptor, field_path: str) -> FieldDescriptor:
    field: FieldDescriptor | None = None
    current: descriptor.Descriptor | None = message_type
    for part in field_path.split("."):
        assert current is not None  # checked by rules.exposed_routes
        field = current.fields_by_name[part]
        current = field.message_type
    assert field is not None
    return field


def _masked_type(route: GatewayRoute) -> descriptor.Descriptor:
    """The message `fields=` selects from: the response, or its `response_body` field's."""
    output = route.method.output_type
    if route.response_body:
        return output.fields_by_name[route.response_body].message_type or output
    return output


def _first_sentence(text: str) -> str:
    flat = " ".join(text.split())
    end = flat.find(". ")
    return flat if end < 0 else flat[: end + 1]
