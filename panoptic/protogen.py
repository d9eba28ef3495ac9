"""Generates the `panoptic.v1` Python package from `protos/` (what `make protos` runs).

The generated modules are committed so that a plain `pip install` of a checkout can import
them without a build step; `tests/unit/test_protos.py` fails when they drift from the protos.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
PACKAGE = "panoptic/v1"

# The compiled descriptors with their comments (source info) and every import: the gateway reads
# its routes and the OpenAPI descriptions from them.
DESCRIPTOR_SET = "descriptor_set.binpb"

INIT_TEXT = (
    '"""The Panoptic v1 API, generated from protos/panoptic/v1 by `make protos`. Do not edit."""\n'
)


def proto_files() -> list[Path]:
    """The API's .proto files, relative to the proto root, in a stable order."""
    return sorted(path.relative_to(PROTO_ROOT) for path in (PROTO_ROOT / PACKAGE).glob("*.proto"))


def include_paths() -> list[Path]:
    """Where protoc finds our protos, the well-known types and google/api/*.proto."""
    import google.api  # googleapis-common-protos ships its .proto files beside its modules
    import grpc_tools

    googleapis_root = Path(next(iter(google.api.__path__))).parent.parent
    well_known = Path(str(resources.files(grpc_tools) / "_proto"))
    return [PROTO_ROOT, googleapis_root, well_known]


def generate(out_dir: Path) -> None:
    """Compiles every proto into `out_dir/panoptic/v1`, with stubs and a descriptor set."""
    from grpc_tools import protoc

    args = ["grpc_tools.protoc"]
    args += [f"-I{path}" for path in include_paths()]
    args += [f"--python_out={out_dir}", f"--pyi_out={out_dir}", f"--grpc_python_out={out_dir}"]
    (out_dir / PACKAGE).mkdir(parents=True, exist_ok=True)
    args += [
        f"--descriptor_set_out={out_dir / PACKAGE / DESCRIPTOR_SET}",
        "--include_source_info",
        "--include_imports",
    ]
    args += [str(path) for path in proto_files()]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed; see the messages above")
    (out_dir / PACKAGE / "__init__.py").write_text(INIT_TEXT)


def main() -> None:
    """Regenerates the committed package in place."""
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        target = ROOT / PACKAGE
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(Path(tmp) / PACKAGE, target)
    print(f"generated {target.relative_to(ROOT)} from {len(proto_files())} protos", file=sys.stderr)


if __name__ == "__main__":
    main()
