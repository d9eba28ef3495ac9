"""Where the gateway learns the API: the retriever's server reflection, or a descriptor set file.

Either way the result is a set of `FileDescriptorProto`s loaded into a private `DescriptorPool`,
so the gateway needs no generated code of the service it fronts. Reflection from grpcio serves
the generated modules' descriptors, which carry no comments; when a compiled descriptor set with
source info is at hand and holds the very same files, its comments are attached so the OpenAPI
document can use them as descriptions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.api import annotations_pb2  # noqa: F401 - registers the google.api.http option
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from panoptic.core.errors import PanopticError

# The compiled descriptors of this checkout's protos, with comments (`make protos` writes it).
PACKAGED_DESCRIPTOR_SET = (
    Path(__file__).resolve().parent.parent.parent / "panoptic" / "v1" / "descriptor_set.binpb"
)
REFLECTION = "reflection"


class DescriptorError(PanopticError):
    """The API's descriptors could not be loaded; the message says from where and why."""


@dataclass(frozen=True)
class LoadedDescriptors:
    """A pool holding the API, the files it came from and a fingerprint of their content."""

    pool: descriptor_pool.DescriptorPool
    files: tuple[descriptor_pb2.FileDescriptorProto, ...]
    fingerprint: str
    """Changes exactly when the served API changes (a redeployed retriever with new protos)."""
    comments: Mapping[str, str]
    """Leading comments by full name (`panoptic.v1.Claim`, `panoptic.v1.Claim.text`, ...)."""


def load_descriptor_set(path: Path) -> list[descriptor_pb2.FileDescriptorProto]:
    """The files of a `FileDescriptorSet` (protoc `--descriptor_set_out --include_imports`)."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DescriptorError(f"cannot read the descriptor set {path}: {error.strerror}") from None
    descriptor_set = descriptor_pb2.FileDescriptorSet()
    try:
        descriptor_set.ParseFromString(data)
    except Exception:  # protobuf raises DecodeError, or others from upb, for garbage
        raise DescriptorError(f"{path} is not a serialized FileDescriptorSet") from None
    return list(descriptor_set.file)


async def fetch_by_reflection(
    channel: Any, services: Iterable[str], timeout: float
) -> list[descriptor_pb2.FileDescriptorProto]:
    """The files defining `services` and everything they import, asked of a server's reflection."""
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    files: dict[str, descriptor_pb2.FileDescriptorProto] = {}

    async def ask(request: reflection_pb2.ServerReflectionRequest, what: str) -> None:
        try:
            replies = [
                reply async for reply in stub.ServerReflectionInfo(iter([request]), timeout=timeout)
            ]
        except grpc.aio.AioRpcError as error:
            raise DescriptorError(
                f"server reflection failed for {what}: {error.code().name}"
            ) from None
        for reply in replies:
            if reply.HasField("error_response"):
                raise DescriptorError(
                    f"server reflection does not know {what}: {reply.error_response.error_message}"
                )
            for serialized in reply.file_descriptor_response.file_descriptor_proto:
                file = descriptor_pb2.FileDescriptorProto.FromString(serialized)
                files.setdefault(file.name, file)

    for service in services:
        await ask(reflection_pb2.ServerReflectionRequest(file_containing_symbol=service), service)
    # grpcio answers with the transitive imports too; other servers may not.
    while missing := {dep for file in files.values() for dep in file.dependency} - files.keys():
        for name in sorted(missing):
            await ask(reflection_pb2.ServerReflectionRequest(file_by_filename=name), name)
    return list(files.values())


def build(
    files: Iterable[descriptor_pb2.FileDescriptorProto],
    source_info: Iterable[descriptor_pb2.FileDescriptorProto] = (),
) -> LoadedDescriptors:
    """A private pool of `files`, with comments taken from `source_info` where files match."""
    by_name = {file.name: file for file in files}
    annotated = {file.name: file for file in source_info if file.HasField("source_code_info")}
    ordered = _in_dependency_order(by_name)
    merged = []
    for file in ordered:
        twin = annotated.get(file.name)
        if not file.HasField("source_code_info") and twin is not None and _same_content(file, twin):
            copy = descriptor_pb2.FileDescriptorProto()
            copy.CopyFrom(file)
            copy.source_code_info.CopyFrom(twin.source_code_info)
            file = copy
        merged.append(file)
    pool = descriptor_pool.DescriptorPool()
    digest = hashlib.sha256()
    for file in merged:
        try:
            pool.Add(file)
        except Exception as error:  # TypeError from upb for inconsistent files
            raise DescriptorError(f"invalid descriptor {file.name}: {error}") from None
        stripped = descriptor_pb2.FileDescriptorProto()
        stripped.CopyFrom(file)
        stripped.ClearField("source_code_info")
        digest.update(stripped.SerializeToString(deterministic=True))
    comments: dict[str, str] = {}
    for file in merged:
        comments.update(_comments_of(file))
    return LoadedDescriptors(pool, tuple(merged), digest.hexdigest(), comments)


def packaged_source_info(path: Path | None) -> list[descriptor_pb2.FileDescriptorProto]:
    """The annotated files to take comments from, or none when there is no such file."""
    if path is None or not path.exists():
        return []
    return load_descriptor_set(path)


def _in_dependency_order(
    files: Mapping[str, descriptor_pb2.FileDescriptorProto],
) -> list[descriptor_pb2.FileDescriptorProto]:
    ordered: list[descriptor_pb2.FileDescriptorProto] = []
    done: set[str] = set()

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if name in done:
            return
        if name in chain:
            raise DescriptorError(f"import cycle: {' -> '.join((*chain, name))}")
        file = files.get(name)
        if file is None:
            raise DescriptorError(f"{chain[-1] if chain else '?'} imports {name}, not provided")
        for dependency in file.dependency:
            visit(dependency, (*chain, name))
        done.add(name)
        ordered.append(file)

    for name in sorted(files):
        visit(name, ())
    return ordered


def _same_content(
    a: descriptor_pb2.FileDescriptorProto, b: descriptor_pb2.FileDescriptorProto
) -> bool:
    """Whether two descriptors of a file say the same, ignoring comments and json_name.

    protoc writes each field's json_name into descriptor sets but not into the descriptors it
    embeds in generated Python, which is what grpcio's reflection serves.
    """
    return _normalized(a) == _normalized(b)


def _normalized(file: descriptor_pb2.FileDescriptorProto) -> bytes:
    copy = descriptor_pb2.FileDescriptorProto()
    copy.CopyFrom(file)
    copy.ClearField("source_code_info")

    def clear(messages: Iterable[descriptor_pb2.DescriptorProto]) -> None:
        for message in messages:
            for field in (*message.field, *message.extension):
                field.ClearField("json_name")
            clear(message.nested_type)

    clear(copy.message_type)
    for extension in copy.extension:
        extension.ClearField("json_name")
    return copy.SerializeToString(deterministic=True)


# Field numbers in descriptor.proto, as used by SourceCodeInfo.Location.path.
_FILE_MESSAGE, _FILE_ENUM, _FILE_SERVICE = 4, 5, 6
_MESSAGE_FIELD, _MESSAGE_NESTED, _MESSAGE_ENUM = 2, 3, 4
_ENUM_VALUE, _SERVICE_METHOD = 2, 2


def _comments_of(file: descriptor_pb2.FileDescriptorProto) -> dict[str, str]:
    """Leading comments of the file's declarations, keyed by full name."""
    if not file.HasField("source_code_info"):
        return {}
    names: dict[tuple[int, ...], str] = {}
    prefix = f"{file.package}." if file.package else ""

    def enum(path: tuple[int, ...], proto: descriptor_pb2.EnumDescriptorProto, scope: str) -> None:
        name = f"{scope}{proto.name}"
        names[path] = name
        for index, value in enumerate(proto.value):
            # Keyed under their enum here (protobuf itself scopes them beside the enum).
            names[(*path, _ENUM_VALUE, index)] = f"{name}.{value.name}"

    def message(path: tuple[int, ...], proto: descriptor_pb2.DescriptorProto, scope: str) -> None:
        name = f"{scope}{proto.name}"
        names[path] = name
        for index, field in enumerate(proto.field):
            names[(*path, _MESSAGE_FIELD, index)] = f"{name}.{field.name}"
        for index, nested in enumerate(proto.nested_type):
            message((*path, _MESSAGE_NESTED, index), nested, f"{name}.")
        for index, nested_enum in enumerate(proto.enum_type):
            enum((*path, _MESSAGE_ENUM, index), nested_enum, f"{name}.")

    for index, message_proto in enumerate(file.message_type):
        message((_FILE_MESSAGE, index), message_proto, prefix)
    for index, enum_proto in enumerate(file.enum_type):
        enum((_FILE_ENUM, index), enum_proto, prefix)
    for index, service in enumerate(file.service):
        names[(_FILE_SERVICE, index)] = f"{prefix}{service.name}"
        for method_index, method in enumerate(service.method):
            names[(_FILE_SERVICE, index, _SERVICE_METHOD, method_index)] = (
                f"{prefix}{service.name}.{method.name}"
            )
    comments = {}
    for location in file.source_code_info.location:
        name = names.get(tuple(location.path))
        if name is not None and location.leading_comments.strip():
            comments[name] = _clean_comment(location.leading_comments)
    return comments


def _clean_comment(text: str) -> str:
    lines = [line[1:] if line.startswith(" ") else line for line in text.strip("\n").split("\n")]
    return "\n".join(lines).strip()
