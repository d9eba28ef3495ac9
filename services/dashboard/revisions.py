"""What changed between two revisions of a claim, in a form a reader can follow.

The text is compared word by word (`difflib`), so a changed word shows as one deletion and one
insertion rather than a whole changed line; every other field is listed with its old and new
value when it differs.
"""

from __future__ import annotations

import difflib
import itertools
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from panoptic.model.claims import ClaimRow
from panoptic.reads.queries import RevisionRow

# Words and the whitespace between them, kept as separate tokens so the text is rebuilt exactly.
_TOKENS: Final = re.compile(r"\s+|[^\s]+")


@dataclass(frozen=True)
class TextPiece:
    """A stretch of text that is the same in both revisions, or only in the old or the new."""

    kind: Literal["same", "removed", "added"]
    text: str


@dataclass(frozen=True)
class FieldChange:
    """One field other than the text whose value differs."""

    field: str
    old: str
    new: str


@dataclass(frozen=True)
class RevisionDiff:
    """The differences from one revision to the next."""

    old_revision: int
    new_revision: int
    text: tuple[TextPiece, ...]
    fields: tuple[FieldChange, ...]

    @property
    def text_changed(self) -> bool:
        """Whether the text differs at all."""
        return any(piece.kind != "same" for piece in self.text)

    @property
    def unchanged(self) -> bool:
        """Whether nothing differs (e.g. a retraction that kept everything but the state)."""
        return not self.text_changed and not self.fields


def text_diff(old: str, new: str) -> tuple[TextPiece, ...]:
    """`old` and `new` as runs of kept, removed and added text, word by word."""
    before, after = _TOKENS.findall(old), _TOKENS.findall(new)
    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    pieces: list[TextPiece] = []
    for operation, a1, a2, b1, b2 in matcher.get_opcodes():
        if operation == "equal":
            pieces.append(TextPiece("same", "".join(before[a1:a2])))
            continue
        if a2 > a1:
            pieces.append(TextPiece("removed", "".join(before[a1:a2])))
        if b2 > b1:
            pieces.append(TextPiece("added", "".join(after[b1:b2])))
    return tuple(_merge(pieces))


def _merge(pieces: list[TextPiece]) -> list[TextPiece]:
    """Joins neighbouring pieces of the same kind."""
    merged: list[TextPiece] = []
    for piece in pieces:
        if merged and merged[-1].kind == piece.kind:
            merged[-1] = TextPiece(piece.kind, merged[-1].text + piece.text)
        else:
            merged.append(piece)
    return merged


def _shown(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    if isinstance(value, tuple):
        return ", ".join(str(item) for item in value) or "—"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value) if value != "" else "—"


# The fields compared besides the text, with the names the page shows.
_FIELDS: Final = (
    ("state", "state"),
    ("actor_id", "actor"),
    ("topic_ids", "topics"),
    ("stated_at", "stated at"),
    ("language", "language"),
    ("confidence", "confidence"),
    ("source_url", "source URL"),
    ("source_title", "source title"),
    ("source_publisher", "publisher"),
    ("source_published_at", "published at"),
)


def claim_diff(old: ClaimRow, new: ClaimRow, old_revision: int, new_revision: int) -> RevisionDiff:
    """How the claim changed from `old` to `new`."""
    fields = tuple(
        FieldChange(label, _shown(getattr(old, name)), _shown(getattr(new, name)))
        for name, label in _FIELDS
        if getattr(old, name) != getattr(new, name)
    )
    return RevisionDiff(old_revision, new_revision, text_diff(old.text, new.text), fields)


def history_diffs(revisions: list[RevisionRow]) -> dict[int, RevisionDiff]:
    """For each revision after the first in `revisions` (oldest first), its diff from the one
    before, keyed by the newer revision's number."""
    return {
        new.revision: claim_diff(old.claim, new.claim, old.revision, new.revision)
        for old, new in itertools.pairwise(revisions)
    }
