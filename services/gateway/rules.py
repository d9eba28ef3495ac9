"""HTTP rules to routes: path templates per google/api/http.proto, and what may be exposed.

The grammar (http.proto):

    Template = "/" Segments [ Verb ] ;
    Segments = Segment { "/" Segment } ;
    Segment  = "*" | "**" | LITERAL | Variable ;
    Variable = "{" FieldPath [ "=" Segments ] "}" ;
    FieldPath = IDENT { "." IDENT } ;
    Verb     = ":" LITERAL ;

Matching works on the raw (still percent-encoded) path: literals must match byte for byte, so
`/v1%2Fclaims` or `/v1/claim%73` match nothing, and dot segments are refused before any route
is tried. Only then are captured values decoded.

Exposure is decided here too, once per set of descriptors: a service may be routed only when
every one of its methods is unary, marked `idempotency_level = NO_SIDE_EFFECTS`, and bound (if
at all) by GET rules without a body. Anything else refuses the whole configuration.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote

from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor, descriptor_pb2, descriptor_pool

from panoptic.core.errors import PanopticError

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Literal segments and verbs: RFC 3986 unreserved characters and the sub-delimiters a path may
# carry unencoded, minus the characters the template grammar uses itself.
_LITERAL = re.compile(r"[A-Za-z0-9\-._~!$&'()+,;@]+")
_ENCODED_SLASH = re.compile(r"%2[Ff]")


class TemplateError(PanopticError):
    """A path template does not follow the google.api.http grammar."""


class UnsafeExposure(PanopticError):
    """The configured services include something the gateway must never expose."""


@dataclass(frozen=True, slots=True)
class Capture:
    """A variable: the request field it sets and the segments it spans."""

    field_path: str
    """Dotted proto field names, e.g. `claim_id` or `parent.name`."""
    start: int
    end: int | None
    """End of the span (exclusive); None when the span ends with `**`."""


@dataclass(frozen=True, slots=True)
class PathTemplate:
    """A compiled path template."""

    source: str
    segments: tuple[str | None, ...]
    """Each literal segment's text; None for `*` (one segment) and for a final `**`."""
    greedy: bool
    """Whether the last segment is `**` (zero or more segments)."""
    captures: tuple[Capture, ...]
    verb: str | None

    @property
    def literal_count(self) -> int:
        """How many segments are literal; the more, the more specific the template."""
        return sum(segment is not None for segment in self.segments)

    def match(self, path: str) -> dict[str, str] | None:
        """The decoded captures by field path when `path` (raw, starting `/`) matches, else None."""
        if self.verb is not None:
            if not path.endswith(":" + self.verb):
                return None
            path = path[: -len(self.verb) - 1]
        parts = path[1:].split("/")
        count = len(self.segments)
        if self.greedy:
            fixed = count - 1
            if len(parts) < fixed:
                return None
        elif len(parts) != count:
            return None
        else:
            fixed = count
        for index in range(fixed):
            expected = self.segments[index]
            part = parts[index]
            if expected is None:
                if not part:
                    return None
            elif part != expected:
                return None
        if self.greedy and any(not part for part in parts[fixed:]):
            return None
        values: dict[str, str] = {}
        for capture in self.captures:
            span = parts[capture.start : capture.end]
            if not span:
                return None
            if len(span) == 1 and capture.end is not None:
                values[capture.field_path] = unquote(span[0])
            else:
                # A multi-segment value keeps encoded slashes encoded, as http.proto specifies.
                values[capture.field_path] = "/".join(_decode_keeping_slashes(s) for s in span)
        return values


def _decode_keeping_slashes(segment: str) -> str:
    pieces = _ENCODED_SLASH.split(segment)
    return "%2F".join(unquote(piece) for piece in pieces)


def parse_template(source: str) -> PathTemplate:
    """Compiles a template such as `/v1/{name=shelves/*/books/*}:search`."""
    if not source.startswith("/"):
        raise TemplateError(f"path template {source!r} must start with '/'")
    body = source[1:]
    verb: str | None = None
    colon = body.rfind(":")
    if colon > max(body.rfind("/"), body.rfind("}")):
        verb = body[colon + 1 :]
        body = body[:colon]
        if not _LITERAL.fullmatch(verb):
            raise TemplateError(f"path template {source!r} has an invalid verb {verb!r}")
    segments: list[str | None] = []
    captures: list[Capture] = []
    greedy = False
    for token in _split_top_level(body, source):
        if greedy:
            raise TemplateError(f"path template {source!r}: '**' must be the last segment")
        if token.startswith("{"):
            inner = token[1:-1]
            field_path, has_pattern, pattern = inner.partition("=")
            if not all(_IDENT.fullmatch(part) for part in field_path.split(".")):
                raise TemplateError(f"path template {source!r}: bad field path {field_path!r}")
            if any(capture.field_path == field_path for capture in captures):
                raise TemplateError(f"path template {source!r} binds {field_path} twice")
            start = len(segments)
            for part in (pattern if has_pattern else "*").split("/"):
                greedy = _add_segment(part, segments, source, greedy)
            captures.append(Capture(field_path, start, None if greedy else len(segments)))
        else:
            greedy = _add_segment(token, segments, source, greedy)
    return PathTemplate(source, tuple(segments), greedy, tuple(captures), verb)


def _add_segment(part: str, segments: list[str | None], source: str, greedy: bool) -> bool:
    if greedy:
        raise TemplateError(f"path template {source!r}: '**' must be the last segment")
    if part == "**":
        segments.append(None)
        return True
    if part == "*":
        segments.append(None)
    elif _LITERAL.fullmatch(part) and part not in (".", ".."):
        segments.append(part)
    else:
        raise TemplateError(f"path template {source!r} has an invalid segment {part!r}")
    return False


def _split_top_level(body: str, source: str) -> list[str]:
    tokens: list[str] = []
    depth = 0
    current = ""
    for char in body:
        if char == "{":
            if depth:
                raise TemplateError(f"path template {source!r} nests variables")
            depth = 1
        elif char == "}":
            if not depth:
                raise TemplateError(f"path template {source!r} has an unmatched '}}'")
            depth = 0
        if char == "/" and not depth:
            tokens.append(current)
            current = ""
        else:
            current += char
    if depth:
        raise TemplateError(f"path template {source!r} has an unclosed '{{'")
    tokens.append(current)
    for token in tokens:
        if token.startswith("{") and not token.endswith("}"):
            raise TemplateError(f"path template {source!r}: a variable must be a whole segment")
    return tokens


@dataclass(frozen=True)
class GatewayRoute:
    """One GET binding of one method: what a matching request is transcoded into."""

    template: PathTemplate
    method: descriptor.MethodDescriptor
    response_body: str
    """The http rule's `response_body`: one response field to answer with, or "" for all."""

    @property
    def grpc_path(self) -> str:
        """The gRPC method path, e.g. `/panoptic.v1.RetrieverService/GetClaim`."""
        return f"/{self.method.containing_service.full_name}/{self.method.name}"

    @property
    def name(self) -> str:
        """The method's full name, e.g. `panoptic.v1.RetrieverService.GetClaim`."""
        return str(self.method.full_name)


def exposed_routes(
    pool: descriptor_pool.DescriptorPool, services: Sequence[str]
) -> list[GatewayRoute]:
    """The GET routes of the allow-listed `services`, or `UnsafeExposure` saying what is wrong."""
    if not services:
        raise UnsafeExposure("no service is configured for the gateway to expose")
    routes: list[GatewayRoute] = []
    for service_name in services:
        try:
            service = pool.FindServiceByName(service_name)
        except KeyError:
            raise UnsafeExposure(f"the API does not define the service {service_name}") from None
        for method in service.methods:
            routes.extend(_method_routes(method))
    seen: dict[tuple[tuple[str | None, ...], bool, str | None], GatewayRoute] = {}
    for route in routes:
        key = (route.template.segments, route.template.greedy, route.template.verb)
        if key in seen:
            raise UnsafeExposure(
                f"{route.name} and {seen[key].name} bind the same path {route.template.source}"
            )
        seen[key] = route
    return routes


def _method_routes(method: descriptor.MethodDescriptor) -> list[GatewayRoute]:
    name = method.full_name
    if method.client_streaming or method.server_streaming:
        raise UnsafeExposure(f"{name} is a streaming method; the gateway exposes unary reads only")
    options = method.GetOptions()
    if options.idempotency_level != descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS:
        raise UnsafeExposure(
            f"{name} is not marked `option idempotency_level = NO_SIDE_EFFECTS`; the gateway "
            "exposes only methods free of side effects"
        )
    if not options.HasExtension(annotations_pb2.http):
        return []
    rule: http_pb2.HttpRule = options.Extensions[annotations_pb2.http]
    bindings = [rule, *rule.additional_bindings]
    routes = []
    for index, binding in enumerate(bindings):
        if index and binding.additional_bindings:
            raise UnsafeExposure(f"{name}: additional_bindings may not nest")
        kind = binding.WhichOneof("pattern")
        if kind != "get":
            shown = binding.custom.kind if kind == "custom" else kind
            raise UnsafeExposure(
                f"{name} has a {str(shown).upper()} binding; the gateway exposes GET bindings only"
            )
        if binding.body:
            raise UnsafeExposure(f"{name}: a GET binding cannot take a body")
        template = parse_template(binding.get)
        for capture in template.captures:
            _check_path_field(method, capture.field_path)
        if binding.response_body and (
            binding.response_body not in method.output_type.fields_by_name
        ):
            raise UnsafeExposure(f"{name}: response_body {binding.response_body} is not a field")
        routes.append(GatewayRoute(template, method, binding.response_body))
    return routes


def _check_path_field(method: descriptor.MethodDescriptor, field_path: str) -> None:
    message = method.input_type
    parts = field_path.split(".")
    for position, part in enumerate(parts):
        field = message.fields_by_name.get(part)
        if field is None:
            raise UnsafeExposure(f"{method.full_name}: the path binds {field_path}, not a field")
        last = position == len(parts) - 1
        if _is_repeated(field):
            raise UnsafeExposure(f"{method.full_name}: the path binds repeated {field_path}")
        if last:
            if field.type != descriptor.FieldDescriptor.TYPE_STRING:
                raise UnsafeExposure(f"{method.full_name}: path field {field_path} is no string")
        elif field.message_type is None:
            raise UnsafeExposure(f"{method.full_name}: {field_path} crosses a scalar field")
        else:
            message = field.message_type


def _is_repeated(field: descriptor.FieldDescriptor) -> bool:
    return bool(field.is_repeated)


def has_dot_segment(raw_path: str) -> bool:
    """Whether a raw path holds `.` or `..` segments, plainly or percent-encoded."""
    return any(unquote(part) in (".", "..") for part in raw_path.split("/"))


class Router:
    """Finds the route of a raw path: verb routes first, then the most literal segments."""

    def __init__(self, routes: Iterable[GatewayRoute]) -> None:
        self.routes = sorted(
            routes,
            key=lambda route: (
                route.template.verb is None,
                -route.template.literal_count,
                route.template.greedy,
            ),
        )

    def find(self, raw_path: str) -> tuple[GatewayRoute, dict[str, str]] | None:
        """The route and its captured values, or None."""
        for route in self.routes:
            values = route.template.match(raw_path)
            if values is not None:
                return route, values
        return None
