"""`panoptic index`, the pipeline client, against a real indexer on a database of its own."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path

import asyncpg
import pytest

from panoptic.core.db import DatabaseUrl
from panoptic.suite.demo import generate_corpus, write_jsonl
from tests.support.indexer import running_indexer, start_indexer
from tests.support.processes import (
    ConnectionTrap,
    PanopticProcess,
    run_panoptic,
    service_env,
    wait_for,
)

pytestmark = pytest.mark.slow


def _corpus(path: Path, claims: int, seed: int = 7) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        write_jsonl(generate_corpus(seed=seed, claims=claims, actors=30, topics=12), handle)
    return path


def _index(env: dict[str, str], path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_panoptic("index", str(path), *args, env=env, timeout=180)


async def _counts(url: DatabaseUrl) -> tuple[int, int, int]:
    connection = await asyncpg.connect(url.value)
    try:
        row = await connection.fetchrow(
            "SELECT (SELECT count(*) FROM claims) AS claims,"
            " (SELECT count(*) FROM claim_revisions) AS revisions,"
            " (SELECT count(*) FROM claims WHERE revision <> 1) AS revised"
        )
    finally:
        await connection.close()
    assert row is not None
    return row["claims"], row["revisions"], row["revised"]


@pytest.mark.asyncio(loop_scope="session")
async def test_a_file_is_indexed_once_however_often_it_is_sent(
    fresh_database: DatabaseUrl, tmp_path: Path
) -> None:
    """Every claim of the file lands once; a second run replays every batch and writes nothing."""
    env = service_env(fresh_database.value, tmp_path / "data")
    corpus = _corpus(tmp_path / "corpus.jsonl", 1200)
    with running_indexer(env, tmp_path / "indexer.log"):
        first = _index(env, corpus, "--batch-size", "100")
        assert first.returncode == 0, first.stderr
        assert "1200 created" in first.stderr
        assert await _counts(fresh_database) == (1200, 1200, 0)

        second = _index(env, corpus, "--batch-size", "100")
        assert second.returncode == 0, second.stderr
        assert "12 already indexed (nothing written)" in second.stderr
    assert await _counts(fresh_database) == (1200, 1200, 0)


@pytest.mark.asyncio(loop_scope="session")
async def test_an_interrupted_run_resumes_without_duplicates(
    fresh_database: DatabaseUrl, tmp_path: Path
) -> None:
    """Killed mid-file, a rerun skips what was acknowledged and finishes with one revision each."""
    env = service_env(fresh_database.value, tmp_path / "data")
    corpus = _corpus(tmp_path / "corpus.jsonl", 6000)
    progress_dir = Path(env["PANOPTIC_DATA_DIR"]) / "index-progress"
    with running_indexer(env, tmp_path / "indexer.log"):
        client = PanopticProcess(
            ("index", str(corpus), "--batch-size", "50"), env, tmp_path / "client.log"
        ).start()
        wait_for(lambda: any(progress_dir.glob("*.json")) or client.process.poll() is not None)
        client.stop(signal.SIGKILL)
        done = [json.loads(p.read_text())["batches_done"] for p in progress_dir.glob("*.json")]
        claims_before, _, _ = await _counts(fresh_database)
        assert claims_before < 6000, "the client finished before it could be interrupted"

        rerun = _index(env, corpus, "--batch-size", "50")
        assert rerun.returncode == 0, rerun.stderr
        if done:
            assert f"{done[0]} skipped as done" in rerun.stderr
    assert await _counts(fresh_database) == (6000, 6000, 0)


@pytest.mark.asyncio(loop_scope="session")
async def test_the_client_retries_until_the_indexer_is_up(
    fresh_database: DatabaseUrl, tmp_path: Path
) -> None:
    """UNAVAILABLE is retried with backoff: a client started before the indexer, whose first
    call is hung up on, still succeeds once the indexer is up."""
    env = service_env(fresh_database.value, tmp_path / "data")
    corpus = _corpus(tmp_path / "corpus.jsonl", 300)
    with ConnectionTrap(int(env["PANOPTIC_INDEXER_PORT"])) as trap:
        client = PanopticProcess(("index", str(corpus)), env, tmp_path / "client.log").start()
        wait_for(lambda: trap.connections > 0 or client.process.poll() is not None)
    indexer = start_indexer(env, tmp_path / "indexer.log")
    try:
        assert client.wait(timeout=120) == 0, client.output
    finally:
        indexer.stop()
    assert "300 created" in client.output
    retries = re.search(r"(\d+) retries", client.output)
    assert retries is not None, client.output
    assert int(retries.group(1)) >= 1
    assert await _counts(fresh_database) == (300, 300, 0)


def test_a_malformed_line_is_named(tmp_path: Path) -> None:
    """A line that is not an IndexRecord stops the run with its line number, no traceback."""
    corpus = _corpus(tmp_path / "corpus.jsonl", 20)
    lines = corpus.read_text().splitlines()
    lines[6] = '{"claim": {"id": "c-1", "confidence": "very"}}'
    corpus.write_text("\n".join(lines) + "\n")
    env = service_env("postgresql://unused@127.0.0.1/unused", tmp_path / "data")
    result = _index(env, corpus)
    assert result.returncode == 2
    assert "line 7 is not a valid IndexRecord" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.asyncio(loop_scope="session")
async def test_a_claim_the_indexer_refuses_is_named_by_its_line(
    fresh_database: DatabaseUrl, tmp_path: Path
) -> None:
    """A claim from the future is reported with its file line; earlier batches stay indexed."""
    corpus = _corpus(tmp_path / "corpus.jsonl", 250)
    lines = corpus.read_text().splitlines()
    bad_line = len(lines) - 3  # in the last batch of 100
    record = json.loads(lines[bad_line - 1])
    future = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 86_400 * 30))
    record["claim"]["statedAt"] = future
    lines[bad_line - 1] = json.dumps(record)
    corpus.write_text("\n".join(lines) + "\n")
    env = service_env(fresh_database.value, tmp_path / "data")
    with running_indexer(env, tmp_path / "indexer.log"):
        result = _index(env, corpus, "--batch-size", "100")
    assert result.returncode == 2, result.stderr
    assert f"line {bad_line} (claims[" in result.stderr
    assert "statedAt): is in the future" in result.stderr
    claims, revisions, _ = await _counts(fresh_database)
    assert (claims, revisions) == (200, 200)
