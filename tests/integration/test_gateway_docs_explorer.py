"""The API explorer at /docs on a real gateway in front of a real retriever: Swagger UI's files
served from the allow-list alone, the page under its Content-Security-Policy, and a request sent
from the page in Debian's Chromium that shows the claim.

Screenshots are kept under `test-artifacts/gateway-explorer/` for people to look at.
"""

from __future__ import annotations

import http.client
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from services.gateway.explorer import ASSET_CACHE, PAGE_CACHE, PAGE_POLICY
from services.gateway.explorer_files import CONTENT_TYPES, STATIC, VENDOR, VENDORED
from tests.support.browser import LAPTOP, Visit, launched_chromium
from tests.support.gateway import GatewayCorpus

pytestmark = pytest.mark.slow

_ASSET_URL = re.compile(r'(?:src|href)="(/docs/assets/[0-9a-f]{16}/)([^"/]+)"')


@pytest.fixture(scope="module")
def client(gateway: str) -> Iterator[httpx.Client]:
    """An HTTP client on the module's running gateway."""
    with httpx.Client(base_url=gateway, timeout=10) as http:
        yield http


@pytest.fixture(scope="module")
def prefix(client: httpx.Client) -> str:
    """Where the page says its files are: `/docs/assets/<build>/`."""
    prefixes = {match[0] for match in _ASSET_URL.findall(client.get("/docs").text)}
    assert len(prefixes) == 1, prefixes
    return prefixes.pop()


def raw_request(gateway: str, target: str, method: str = "GET") -> http.client.HTTPResponse:
    """`target` sent exactly as written (no client normalises its dot segments or escapes)."""
    address = urlsplit(gateway)
    connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=10)
    connection.putrequest(method, target, skip_accept_encoding=True)
    connection.endheaders()
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def test_docs_is_swagger_ui_under_a_strict_policy(client: httpx.Client) -> None:
    """/docs loads Swagger UI from this gateway by script and link tags only, under a policy
    with no inline script, style or eval, is revalidated each time, and keeps the page's
    intro."""
    page = client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    policy = page.headers["content-security-policy"]
    assert policy == PAGE_POLICY.decode()
    assert "unsafe" not in policy
    assert "default-src 'none'" in policy
    assert "script-src 'self';" in policy
    assert "connect-src 'self';" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == PAGE_CACHE
    assert client.get("/docs", headers={"if-none-match": page.headers["etag"]}).status_code == 304
    assert {name for _, name in _ASSET_URL.findall(page.text)} == set(CONTENT_TYPES)
    assert re.findall(r"<script(?![^>]*\bsrc=)", page.text) == []
    assert " style=" not in page.text
    assert "http://" not in page.text
    assert "https://" not in page.text
    for words in ("Try it out", "Execute", "AIP-193", 'href="/openapi.json"'):
        assert words in page.text


@pytest.mark.parametrize("name", sorted(CONTENT_TYPES))
def test_each_allow_listed_file_is_served_with_its_type_for_a_year(
    client: httpx.Client, prefix: str, name: str
) -> None:
    """GET and HEAD of each file: the file's bytes, its Content-Type, an immutable year of
    caching (its URL names the build), an ETag, nosniff."""
    response = client.get(prefix + name)
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPES[name].decode()
    assert response.headers["cache-control"] == ASSET_CACHE
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.content == ((VENDOR if name in VENDORED else STATIC) / name).read_bytes()
    head = client.head(prefix + name)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["etag"] == response.headers["etag"]


def test_the_bundle_is_compressed_and_revalidated(client: httpx.Client, prefix: str) -> None:
    """Swagger UI's bundle goes out brotli-compressed when asked, and a known ETag gets 304."""
    target = prefix + "swagger-ui-bundle.js"
    full = client.get(target, headers={"accept-encoding": "identity"})
    compressed = client.get(target, headers={"accept-encoding": "br"})
    assert compressed.headers["content-encoding"] == "br"
    assert int(compressed.headers["content-length"]) < len(full.content) / 2
    again = client.get(target, headers={"if-none-match": full.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""


@pytest.mark.parametrize(
    "target",
    [
        "{prefix}swagger-ui.js",  # in the npm package, not in the allow-list
        "{prefix}swagger-ui-standalone-preset.js",
        "{prefix}swagger-ui-bundle.js.map",
        "{prefix}index.html",
        "{prefix}LICENSE",  # copied beside the files, never served
        "{prefix}package.json",
        "{prefix}docs.html",
        "{prefix}vendor/swagger-ui.css",
        "{prefix}SWAGGER-UI.CSS",
        "{prefix}swagger-ui-bundleXjs",  # a dot in a name is not a wildcard
        "{prefix}swagger-ui.css/",
        "{prefix}swagger-ui.css%00.js",
        "/docs/assets/swagger-ui.css",  # no build
        "/docs/assets/0123456789abcdef/swagger-ui.css",  # another build
        "/docs/assets/",
        "/docs/explorer.js",
        "{prefix}../../../explorer_files.py",
        "{prefix}../../../../../pyproject.toml",
        "{prefix}..%2f..%2f..%2fexplorer.py",
        "{prefix}%2e%2e/%2e%2e/%2e%2e/explorer.py",
        "{prefix}..%5c..%5c..%5cexplorer.py",
        "{prefix}swagger-ui.css/../../../../../../etc/passwd",
        "{prefix}/etc/passwd",
        "/docs/assets/../../services/gateway/explorer.py",
    ],
)
def test_anything_else_under_docs_assets_is_a_404(gateway: str, prefix: str, target: str) -> None:
    """Names outside the allow-list, other builds, encodings and path traversals get a JSON
    404: no file is read from a path a client wrote."""
    response = raw_request(gateway, target.format(prefix=prefix))
    assert response.status == 404
    assert response.getheader("content-type") == "application/json"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_the_explorer_answers_reads_only(gateway: str, prefix: str, method: str) -> None:
    """Like every gateway page, /docs and its files answer GET and HEAD only."""
    for target in ("/docs", prefix + "explorer.js"):
        response = raw_request(gateway, target, method)
        assert response.status == 405, target
        assert response.getheader("allow") == "GET, HEAD"


@pytest.fixture(scope="module")
def browser(gateway: str) -> Iterator[Any]:
    """Debian's Chromium, once the gateway (and so the corpus) is up."""
    with launched_chromium() as chromium:
        yield chromium


def test_a_request_sent_from_the_explorer_shows_the_claim(
    browser: Any, gateway: str, corpus: GatewayCorpus
) -> None:
    """In Chromium: open /docs, expand GetClaim, Try it out, fill claim_id, Execute; the page
    shows the 200 and the claim's JSON, fetched from this gateway, with no console error and no
    CSP violation."""
    visit = Visit(browser, gateway, LAPTOP, "gateway-explorer")
    try:
        page = visit.page
        page.goto("/docs")
        operation = page.locator("#operations-RetrieverService-RetrieverService_GetClaim")
        operation.wait_for()
        assert "Panoptic API" in page.locator(".information-container").inner_text()
        visit.screenshot("01-docs")
        operation.locator(".opblock-summary-control").click()
        operation.get_by_role("button", name="Try it out").click()
        operation.locator('tr[data-param-name="claim_id"] input').fill(corpus.claim(2))
        operation.get_by_role("button", name="Execute").click()
        answer = operation.locator(".live-responses-table .response")
        answer.wait_for()
        assert answer.locator(".response-col_status").inner_text().strip() == "200"
        body = answer.locator(".response-col_description").inner_text()
        assert f'"id": "{corpus.claim(2)}"' in body
        assert "Les éoliennes en mer seront doublées avant 2030." in body
        assert f"{gateway}/v1/claims/{corpus.claim(2)}" in visit.requested
        answer.scroll_into_view_if_needed()
        visit.screenshot("02-get-claim", full_page=False)
    finally:
        visit.close()
