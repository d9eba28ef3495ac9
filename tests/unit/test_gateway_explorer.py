"""The API explorer's files without a server: what the vendoring step copies, how the page names
its files, the 503 page when Swagger UI's are missing, and a policy with no inline code."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import pytest

from services.gateway.explorer import PAGE_POLICY, Explorer
from services.gateway.explorer_files import (
    CONTENT_TYPES,
    PROVENANCE,
    STATIC,
    VENDORED,
    main,
    vendor,
)
from services.gateway.responses import RequestContext

PAGES = ("docs.html", "docs-unavailable.html")
OWN = tuple(name for name in CONTENT_TYPES if name not in VENDORED)


def fake_dist(root: Path, version: str = "5.0.0") -> Path:
    """A stand-in for node_modules/swagger-ui-dist, with files the explorer must not take."""
    dist = root / "swagger-ui-dist"
    dist.mkdir()
    for name in (*VENDORED, *PROVENANCE, "swagger-ui.js", "index.html", "swagger-ui.css.map"):
        (dist / name).write_text(f"/* {name} */")
    (dist / "package.json").write_text(f'{{"name": "swagger-ui-dist", "version": "{version}"}}')
    return dist


def fake_static(root: Path) -> Path:
    """A copy of the gateway's own explorer files, without Swagger UI's."""
    static = root / "static"
    static.mkdir()
    for name in (*PAGES, *OWN):
        shutil.copyfile(STATIC / name, static / name)
    return static


def answer(explorer: Explorer) -> tuple[int, dict[bytes, bytes], bytes]:
    """What GET /docs sends: status, headers, body."""
    events: list[MutableMapping[str, Any]] = []

    async def send(event: MutableMapping[str, Any]) -> None:
        events.append(event)

    asyncio.run(explorer.docs_page(RequestContext("id", time.perf_counter(), "GET"), send))
    start, body = events
    return start["status"], dict(start["headers"]), body["body"]


def test_vendoring_copies_the_served_files_and_their_licence_alone(tmp_path: Path) -> None:
    """From the npm package, only the allow-listed files and the licence, notice and manifest
    are copied, and what the target held before is gone."""
    target = tmp_path / "vendor"
    target.mkdir()
    (target / "stale.js").write_text("old")
    copied = vendor(fake_dist(tmp_path), target)
    assert sorted(path.name for path in copied) == sorted((*VENDORED, *PROVENANCE))
    assert sorted(path.name for path in target.iterdir()) == sorted((*VENDORED, *PROVENANCE))
    assert (target / "swagger-ui.css").read_text() == "/* swagger-ui.css */"


def test_vendoring_refuses_a_package_that_lacks_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A dist without the bundle is refused before the target is touched, saying to run npm."""
    dist = fake_dist(tmp_path)
    (dist / "swagger-ui-bundle.js").unlink()
    target = tmp_path / "vendor"
    target.mkdir()
    (target / "kept.js").write_text("kept")
    with pytest.raises(FileNotFoundError, match=r"swagger-ui-bundle\.js.*npm ci"):
        vendor(dist, target)
    assert (target / "kept.js").exists()
    assert main([str(dist)]) == 1
    assert "npm ci" in capsys.readouterr().err
    assert main([]) == 2


def test_the_page_names_each_file_under_the_build(tmp_path: Path) -> None:
    """The page loads every allow-listed file from /docs/assets/<build>/, and the build
    changes when any file's bytes do, so a year of caching is safe."""
    static = fake_static(tmp_path)
    vendor(fake_dist(tmp_path, version="5.1.2"), static / "vendor")
    explorer = Explorer.load(static)
    assert explorer.available
    assert explorer.version == "5.1.2"
    assert re.fullmatch(r"[0-9a-f]{16}", explorer.build)
    page = explorer.page.body.decode()
    named = re.findall(r'(?:src|href)="/docs/assets/([0-9a-f]{16})/([^"]+)"', page)
    assert {build for build, _ in named} == {explorer.build}
    assert sorted(name for _, name in named) == sorted(CONTENT_TYPES)
    assert [route.path for route in explorer.routes()] == [
        "/docs",
        *(f"/docs/assets/{explorer.build}/{name}" for name in CONTENT_TYPES),
    ]
    (static / "vendor" / "swagger-ui-bundle.js").write_text("/* another version */")
    assert Explorer.load(static).build != explorer.build


def test_without_swagger_ui_docs_is_a_503_saying_how_to_get_it(tmp_path: Path) -> None:
    """With no vendored files, /docs answers 503 (not cached) with what to run, no file is
    routed, and the page is under the same policy."""
    explorer = Explorer.load(fake_static(tmp_path))
    assert not explorer.available
    assert [route.path for route in explorer.routes()] == ["/docs"]
    status, headers, body = answer(explorer)
    assert status == 503
    assert headers[b"content-type"] == b"text/html; charset=utf-8"
    assert headers[b"cache-control"] == b"no-store"
    assert headers[b"content-security-policy"] == PAGE_POLICY
    assert b"make setup" in body
    assert b'href="/openapi.json"' in body


def test_swagger_ui_is_pinned_exactly() -> None:
    """package.json names one exact swagger-ui-dist version, the one package-lock.json locks."""
    root = STATIC.parents[2]
    wanted = json.loads((root / "package.json").read_text())["dependencies"]["swagger-ui-dist"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", wanted), wanted
    lock = json.loads((root / "package-lock.json").read_text())["packages"]
    assert lock[""]["dependencies"]["swagger-ui-dist"] == wanted
    assert lock["node_modules/swagger-ui-dist"]["version"] == wanted


def test_the_page_policy_allows_no_inline_code_and_nothing_from_elsewhere() -> None:
    """Each directive of /docs's policy: same-origin scripts, styles and requests, data: images
    only beside the gateway's own, and nothing inline or evaluated."""
    directives = dict(directive.split(" ", 1) for directive in PAGE_POLICY.decode().split("; "))
    assert directives == {
        "default-src": "'none'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": "'self' data:",
        "connect-src": "'self'",
        "base-uri": "'none'",
        "form-action": "'none'",
        "frame-ancestors": "'none'",
    }


@pytest.mark.parametrize("name", PAGES)
def test_the_pages_hold_no_inline_script_or_style(name: str) -> None:
    """The committed pages have no inline script, style element or attribute, or event
    handler, and load only allow-listed files, so the strict policy cannot break them."""
    html = (STATIC / name).read_text()
    assert re.findall(r"<script(?![^>]*\bsrc=)", html) == []
    assert "<style" not in html
    assert re.findall(r"\s(?:style|on[a-z]+)=", html) == []
    loaded = re.findall(r'(?:src|href)="/docs/assets/([^"]+)"', html)
    assert set(loaded) <= set(CONTENT_TYPES)
