"""wrk (Debian's `wrk`) as `panoptic bench gateway` runs it: one thread walking a file of paths.

The Lua script reads the request paths once and sends them in order, wrapping around, so two
runs of the same file send the same requests in the same order, whatever the target.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from panoptic.core.errors import PanopticError

_LUA = """
local paths = {}
for line in io.lines("%s") do paths[#paths + 1] = line end
local next_path = 0
request = function()
  next_path = next_path %% #paths + 1
  return wrk.format("GET", paths[next_path])
end
"""
_RATE = re.compile(r"Requests/sec:\s+([\d.]+)")
_REQUESTS = re.compile(r"(\d+) requests in ")
_PERCENTILE = re.compile(r"^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_TIMEOUTS = re.compile(r"Socket errors: .*?timeout (\d+)")
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


class WrkMissing(PanopticError):
    """wrk is not installed."""


@dataclass(frozen=True)
class WrkResult:
    """What wrk measured in one run."""

    requests: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    """Answers other than 2xx or 3xx, and timeouts."""
    timeouts: int = 0
    """Requests wrk gave up on after its timeout (2 s), among the errors."""


def require_wrk() -> str:
    """The path of wrk; WrkMissing, saying how to install it, when there is none."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise WrkMissing("wrk is not installed: `apt-get install wrk` (make system-deps)")
    return wrk


def paths_script(paths: Sequence[str], directory: Path, name: str) -> Path:
    """Writes the paths and a Lua script sending them in order into `directory`; the script."""
    listing = directory / f"{name}.paths"
    listing.write_text("\n".join(paths) + "\n")
    script = directory / f"{name}.lua"
    script.write_text(_LUA % listing)
    return script


def run_wrk(base_url: str, script: Path, connections: int, seconds: int) -> WrkResult:
    """One wrk run against `base_url` with one thread and `connections` connections."""
    arguments = ["-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script)]
    completed = subprocess.run(
        [require_wrk(), *arguments, base_url],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    )
    return parse_wrk(completed.stdout)


def parse_wrk(out: str) -> WrkResult:
    """The figures of wrk's report."""
    rate, requests = _RATE.search(out), _REQUESTS.search(out)
    if rate is None or requests is None:
        raise PanopticError(f"unexpected wrk output:\n{out}")
    percentiles = {
        name: float(number) * _UNITS[unit] for name, number, unit in _PERCENTILE.findall(out)
    }
    return WrkResult(
        requests=int(requests.group(1)),
        requests_per_second=float(rate.group(1)),
        p50_ms=percentiles.get("50", 0.0),
        p99_ms=percentiles.get("99", 0.0),
        errors=sum(map(int, _NON_2XX.findall(out) + _TIMEOUTS.findall(out))),
        timeouts=sum(map(int, _TIMEOUTS.findall(out))),
    )
