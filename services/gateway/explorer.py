"""The API explorer at /docs: Swagger UI on the gateway's own /openapi.json, every file of it
served by the gateway from a fixed allow-list, under a Content-Security-Policy with no inline
script. Without Swagger UI's files (no `make setup`), /docs is a 503 page saying how to get them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from starlette.routing import Route

from services.gateway.endpoints import OwnEndpoint, OwnHandler
from services.gateway.explorer_files import CONTENT_TYPES, STATIC, VENDORED
from services.gateway.responses import NO_STORE, Representation, RequestContext, Send, send_response

ASSETS: Final = "/docs/assets/"
# The page's policy, directive by directive, and why it needs each.
PAGE_POLICY: Final = "; ".join(
    (
        # Nothing not named below: no fonts, frames, workers, objects or media.
        "default-src 'none'",
        # swagger-ui-bundle.js and explorer.js from this gateway; no inline script, no eval.
        "script-src 'self'",
        # swagger-ui.css and explorer.css. Swagger UI sets element styles through the DOM
        # (CSSOM), which a policy does not restrict, so no 'unsafe-inline' is needed.
        "style-src 'self'",
        # The favicon; swagger-ui.css draws its arrows and icons as data: SVG images.
        "img-src 'self' data:",
        # Swagger UI fetches /openapi.json, and "Try it out" sends its requests to this gateway.
        "connect-src 'self'",
        # Not fetches, so default-src does not cover them: no <base>, no form submitted
        # anywhere (Execute sends with fetch), and no page of another site may frame this one.
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
).encode()
PAGE_HEADERS: Final = (
    (b"content-security-policy", PAGE_POLICY),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)
# An asset's URL names the build it belongs to (a hash of every file), so it never changes; the
# page is revalidated (a 304 when its ETag holds), so it never names a previous build's files.
ASSET_CACHE: Final = "public, max-age=31536000, immutable"
PAGE_CACHE: Final = "no-cache"
_HTML: Final = b"text/html; charset=utf-8"


@dataclass(frozen=True)
class Explorer:
    """The /docs page and the files it loads, read once at start."""

    page: Representation
    available: bool
    assets: Mapping[str, Representation]
    """By file name; empty when Swagger UI's files are missing."""
    build: str
    version: str
    """swagger-ui-dist's version, or "" when its files are missing."""
    compress_min: int | None = None

    @classmethod
    def load(cls, static: Path = STATIC, compress_min: int | None = None) -> Explorer:
        """The explorer whose files are under `static` (its `vendor/` copied from npm)."""
        vendor = static / "vendor"
        if not all((vendor / name).is_file() for name in VENDORED):
            page = Representation((static / "docs-unavailable.html").read_bytes(), validate=False)
            return cls(page, False, {}, "", "", compress_min)
        files = {
            name: ((vendor if name in VENDORED else static) / name).read_bytes()
            for name in CONTENT_TYPES
        }
        digest = hashlib.blake2b(digest_size=8)
        for name, body in files.items():
            digest.update(name.encode() + b"\0" + hashlib.sha256(body).digest())
        build = digest.hexdigest()
        html = (static / "docs.html").read_bytes().replace(ASSETS.encode(), asset_prefix(build))
        assets = {name: Representation(body, validate=True) for name, body in files.items()}
        page = Representation(html, validate=True)
        return cls(page, True, assets, build, _version(vendor), compress_min)

    def routes(self) -> list[Route]:
        """/docs, and one route for each allow-listed file: any other path under /docs/assets/
        falls through to the API's routes, which answer 404."""
        routes = [Route("/docs", OwnEndpoint(self.docs_page))]
        prefix = asset_prefix(self.build).decode()
        for name in self.assets:
            routes.append(
                Route(prefix + name, OwnEndpoint(self._asset(name), label=f"{ASSETS}{name}"))
            )
        return routes

    async def docs_page(self, context: RequestContext, send: Send) -> None:
        """Swagger UI's page, or a 503 page saying how to install it."""
        await send_response(
            send,
            context,
            200 if self.available else 503,
            self.page,
            content_type=_HTML,
            cache_control=PAGE_CACHE if self.available else NO_STORE,
            compress_min=self.compress_min,
            headers=PAGE_HEADERS,
        )

    def _asset(self, name: str) -> OwnHandler:
        body = self.assets[name]
        content_type = CONTENT_TYPES[name]

        async def send_asset(context: RequestContext, send: Send) -> None:
            await send_response(
                send,
                context,
                200,
                body,
                content_type=content_type,
                cache_control=ASSET_CACHE,
                compress_min=self.compress_min,
                headers=((b"x-content-type-options", b"nosniff"),),
            )

        return send_asset


def _version(vendor: Path) -> str:
    """The version in swagger-ui-dist's manifest, copied beside its files ("" without it)."""
    manifest = vendor / "package.json"
    if not manifest.is_file():
        return ""
    return str(json.loads(manifest.read_text()).get("version", ""))


def asset_prefix(build: str) -> bytes:
    """Where a build's files are served: `/docs/assets/<build>/`."""
    return f"{ASSETS}{build}/".encode()


__all__ = ["ASSET_CACHE", "PAGE_CACHE", "PAGE_POLICY", "Explorer", "asset_prefix"]
