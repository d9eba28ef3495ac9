"""How the pipeline client cuts a JSON Lines file into batches and names their request ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from panoptic.client.indexing import IndexFileError, ProgressFile, file_digest, read_batches
from panoptic.suite.demo import generate_corpus, write_jsonl


def _file(tmp_path: Path, claims: int = 250) -> Path:
    path = tmp_path / "corpus.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        write_jsonl(generate_corpus(seed=3, claims=claims, actors=5, topics=4), handle)
    return path


def test_batches_hold_at_most_the_batch_size_and_keep_every_record(tmp_path: Path) -> None:
    """Claims are cut into full batches plus a remainder; actors and topics ride along."""
    path = _file(tmp_path)
    batches = list(read_batches(path, file_digest(path), 100))
    assert [len(b.request.claims) for b in batches] == [100, 100, 50]
    assert sum(len(b.request.actors) for b in batches) == 5
    assert sum(len(b.request.topics) for b in batches) == 4


def test_request_ids_come_from_the_content_and_the_position(tmp_path: Path) -> None:
    """The same file gives the same ids; a changed file gives new ones."""
    path = _file(tmp_path)
    first = [b.request.request_id for b in read_batches(path, file_digest(path), 100)]
    again = [b.request.request_id for b in read_batches(path, file_digest(path), 100)]
    assert first == again
    assert len(set(first)) == len(first)
    path.write_text(path.read_text().replace("CLAIM_STATE_ACTIVE", "CLAIM_STATE_RETRACTED", 1))
    changed = [b.request.request_id for b in read_batches(path, file_digest(path), 100)]
    assert not set(changed) & set(first)


def test_violations_point_back_to_file_lines(tmp_path: Path) -> None:
    """A field path such as claims[3].statedAt maps to the line that record came from."""
    path = _file(tmp_path)
    batches = list(read_batches(path, file_digest(path), 100))
    lines = path.read_text().splitlines()
    second = batches[1]
    line = second.line_of("claims[3].statedAt")
    assert line is not None
    assert second.request.claims[3].id in lines[line - 1]
    assert batches[0].line_of("actors[0].displayName") == 5  # after the four topics
    assert second.line_of("requestId") is None
    assert second.line_of("claims[999].text") is None


def test_blank_lines_are_skipped_and_bad_lines_named(tmp_path: Path) -> None:
    """Blank lines are ignored; a line that is no IndexRecord fails with its number."""
    path = _file(tmp_path, claims=10)
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines[:3], "", *lines[3:], '{"nothing": 1}']) + "\n")
    with pytest.raises(IndexFileError, match=f"line {len(lines) + 2} is not a valid IndexRecord"):
        list(read_batches(path, file_digest(path), 100))


def test_progress_is_kept_per_file_and_forgotten_when_done(tmp_path: Path) -> None:
    """Acknowledged batches are recorded per file digest and cleared once the file is in."""
    progress = ProgressFile(tmp_path / "progress", "abc")
    assert progress.batches_done() == 0
    progress.record(7)
    assert ProgressFile(tmp_path / "progress", "abc").batches_done() == 7
    assert ProgressFile(tmp_path / "progress", "other").batches_done() == 0
    progress.finish()
    assert progress.batches_done() == 0
