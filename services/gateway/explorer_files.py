"""The API explorer's files: which the gateway serves, and the step that copies Swagger UI's in.

Swagger UI comes from npm (`swagger-ui-dist`, pinned in package.json and package-lock.json).
`make setup` and the Dockerfile's builder run `python -m services.gateway.explorer_files DIST`
after `npm ci`, which copies the few files the page needs from the package into `static/vendor/`
(git-ignored), so that they ship as package data with the gateway. Standard library only: the
Dockerfile runs it before the project's dependencies are installed.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Final

STATIC: Final = Path(__file__).resolve().parent / "static"
VENDOR: Final = STATIC / "vendor"

# Every file /docs/assets/ serves, and its Content-Type; any other name is a 404.
CONTENT_TYPES: Final = {
    # The project's own: the page's look around Swagger UI, and the script that starts it.
    "explorer.css": b"text/css; charset=utf-8",
    "explorer.js": b"text/javascript; charset=utf-8",
    # swagger-ui-dist's: the bundle has React and the OpenAPI client in it; the standalone
    # preset (a top bar that loads other documents) is left out on purpose.
    "swagger-ui.css": b"text/css; charset=utf-8",
    "swagger-ui-bundle.js": b"text/javascript; charset=utf-8",
    "favicon-32x32.png": b"image/png",
}
VENDORED: Final = ("swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png")
# Copied beside them, never served: the licence and notice Apache-2.0 asks to ship with the
# files, and the package's manifest, which says the version the gateway logs at start.
PROVENANCE: Final = ("LICENSE", "NOTICE", "package.json")


def vendor(dist: Path, target: Path = VENDOR) -> list[Path]:
    """Copies the served files of an installed `swagger-ui-dist` (and its provenance) into
    `target`, replacing what was there; the copied paths."""
    missing = [name for name in (*VENDORED, *PROVENANCE) if not (dist / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{dist} has no {', '.join(missing)}: is swagger-ui-dist installed (npm ci)?"
        )
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    return [Path(shutil.copyfile(dist / name, target / name)) for name in (*VENDORED, *PROVENANCE)]


def main(argv: list[str]) -> int:
    """`python -m services.gateway.explorer_files DIST`: vendors DIST's files."""
    if len(argv) != 1:
        print("usage: python -m services.gateway.explorer_files node_modules/swagger-ui-dist")
        return 2
    try:
        copied = vendor(Path(argv[0]))
    except FileNotFoundError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"copied {len(copied)} files of {argv[0]} into {VENDOR}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
