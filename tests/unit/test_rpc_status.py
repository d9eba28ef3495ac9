"""The rich error statuses every service sends: small enough for any client, whatever they echo."""

from __future__ import annotations

import base64
import urllib.parse

import grpc

from panoptic.core.rpc_status import DETAIL_VIOLATIONS, clip, error_status, fitting

# gRPC clients refuse trailers above 8 KiB some of the time; the status must stay below.
CLIENT_SOFT_LIMIT_BYTES = 8 * 1024
# What the other trailers (grpc-status, the request id, HTTP/2 framing) may take.
OTHER_TRAILERS_BYTES = 512


def test_a_status_fits_a_clients_trailers_whatever_texts_it_carries() -> None:
    """A status echoing huge values of a caller's, in its message, its ErrorInfo metadata and
    a thousand violations, still travels below the clients' trailer limit."""
    huge = "é\U0001f600" * 30_000
    status = error_status(
        grpc.StatusCode.INVALID_ARGUMENT,
        f"message {huge}",
        "INVALID_ARGUMENT",
        metadata={"requestId": huge},
        violations=[(f"claims[{index}].{huge}", huge) for index in range(1_000)],
    )
    message = urllib.parse.quote(status.message, safe=" !\"#$&'()*+,-./:;<=>?@[\\]^_`{|}~")
    details = base64.b64encode(status.SerializeToString())
    assert len(message) + len(details) < CLIENT_SOFT_LIMIT_BYTES - OTHER_TRAILERS_BYTES
    assert status.message.startswith("message é")


def test_short_texts_and_violations_are_kept_as_they_are() -> None:
    """Clipping leaves ordinary texts alone and keeps up to DETAIL_VIOLATIONS short ones."""
    assert clip("claims[3].statedAt", 200) == "claims[3].statedAt"
    assert clip("x" * 300, 200) == "x" * 197 + "…"
    violations = [(f"claims[{index}].text", "required") for index in range(1_000)]
    assert fitting(violations) == violations[:DETAIL_VIOLATIONS]
