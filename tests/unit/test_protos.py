"""The generated `panoptic.v1` package and the contract it must carry."""

from __future__ import annotations

import filecmp
import shutil
import subprocess
from pathlib import Path

import pytest
from google.api import annotations_pb2
from google.protobuf import descriptor_pb2

from panoptic import protogen
from panoptic.v1 import indexer_service_pb2, retriever_service_pb2


def test_generated_code_matches_the_protos(tmp_path: Path) -> None:
    """The committed panoptic/v1 is exactly what `make protos` generates now (no drift)."""
    protogen.generate(tmp_path)
    fresh = tmp_path / protogen.PACKAGE
    committed = protogen.ROOT / protogen.PACKAGE
    fresh_files = sorted(path.name for path in fresh.iterdir() if path.is_file())
    committed_files = sorted(
        path.name for path in committed.iterdir() if path.is_file() and path.suffix != ".pyc"
    )
    assert fresh_files == committed_files, "run `make protos` and commit the result"
    _, mismatch, errors = filecmp.cmpfiles(fresh, committed, fresh_files, shallow=False)
    assert not mismatch, f"stale generated files {mismatch}: run `make protos`"
    assert not errors, errors


def _http_rules() -> dict[str, list[tuple[str, str]]]:
    service = retriever_service_pb2.DESCRIPTOR.services_by_name["RetrieverService"]
    rules: dict[str, list[tuple[str, str]]] = {}
    for method in service.methods:
        rule = method.GetOptions().Extensions[annotations_pb2.http]
        bindings = [rule, *rule.additional_bindings]
        rules[method.name] = [
            (binding.WhichOneof("pattern") or "", binding.get) for binding in bindings
        ]
    return rules


def test_every_retriever_method_has_the_contracts_get_binding() -> None:
    """Each RPC of the contract is bound to exactly the REST routes API.md names, all GET."""
    assert _http_rules() == {
        "GetClaim": [("get", "/v1/claims/{claim_id}")],
        "ListClaims": [("get", "/v1/claims"), ("get", "/v1/actors/{actor_id}/claims")],
        "SearchClaims": [("get", "/v1/claims:search")],
        "ListClaimRevisions": [("get", "/v1/claims/{claim_id}/revisions")],
        "GetActor": [("get", "/v1/actors/{actor_id}")],
        "ListActors": [("get", "/v1/actors")],
        "GetActorTimeline": [("get", "/v1/actors/{actor_id}/timeline")],
        "GetTopic": [("get", "/v1/topics/{topic_id}")],
        "ListTopics": [("get", "/v1/topics")],
        "BatchGetActors": [("get", "/v1/actors:batchGet")],
        "BatchGetTopics": [("get", "/v1/topics:batchGet")],
    }


def test_retriever_methods_are_marked_free_of_side_effects() -> None:
    """Every read is NO_SIDE_EFFECTS, the mark the gateway requires before exposing a method."""
    service = retriever_service_pb2.DESCRIPTOR.services_by_name["RetrieverService"]
    levels = {method.name: method.GetOptions().idempotency_level for method in service.methods}
    assert set(levels.values()) == {descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS}, levels


def test_the_indexer_has_no_http_binding() -> None:
    """The indexer is internal: none of its methods carries a google.api.http rule."""
    service = indexer_service_pb2.DESCRIPTOR.services_by_name["IndexerService"]
    assert [method.name for method in service.methods] == [
        "IndexClaims",
        "StreamIndexClaims",
        "RetractClaim",
    ]
    for method in service.methods:
        assert not method.GetOptions().HasExtension(annotations_pb2.http), method.name


def test_the_breaking_check_catches_a_change_that_breaks_v1(tmp_path: Path) -> None:
    """`make lint` runs `buf breaking` against the published v1 (scripts/buf-lint), and it
    passes; a field renumbered in a copy of the protos is caught."""
    buf = protogen.ROOT / "node_modules" / ".bin" / "buf"
    if not buf.exists():
        pytest.skip("buf is not installed (`npm ci`, which `make setup` runs)")
    subprocess.run(
        [str(protogen.ROOT / "scripts" / "buf-lint")], cwd=protogen.ROOT, check=True, timeout=120
    )
    shutil.copytree(protogen.ROOT / "protos", tmp_path / "protos")
    shutil.copytree(protogen.ROOT / "build" / "proto-deps", tmp_path / "build" / "proto-deps")
    shutil.copy(protogen.ROOT / "buf.yaml", tmp_path / "buf.yaml")
    proto = tmp_path / "protos" / "panoptic" / "v1" / "retriever_service.proto"
    text = proto.read_text()
    proto.write_text(text.replace("string page_token = 3 [", "string page_token = 33 [", 1))
    baseline = protogen.ROOT / "protos-baseline" / "v1.binpb"
    check = subprocess.run(
        [str(buf), "breaking", "protos", "--against", str(baseline)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert check.returncode != 0
    assert "page_token" in check.stdout + check.stderr
