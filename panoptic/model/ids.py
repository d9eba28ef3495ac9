"""The grammar of each id, defined once: the validations check it and the schema's CHECKs hold it.

Each pattern is anchored and written so that Python's `re` and PostgreSQL's `~` read it alike.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class Grammar:
    """An id's shape: the pattern, and the rule a refusal states when a value breaks it."""

    pattern: str
    rule: str

    @functools.cached_property
    def _compiled(self) -> re.Pattern[str]:
        return re.compile(self.pattern)

    def matches(self, value: str) -> bool:
        """Whether `value` has this shape."""
        return self._compiled.match(value) is not None


# Actor and topic ids: lowercase slugs of 1 to 128 characters, as resources.proto says.
SLUG: Final = Grammar(
    "^[a-z0-9](?:[a-z0-9-]{0,126}[a-z0-9])?$",
    "must be a lowercase slug: letters, digits and inner dashes, at most 128",
)
# Claim ids are chosen by pipelines (e.g. a hash of document and span): URL-safe characters.
CLAIM_ID: Final = Grammar(
    "^[A-Za-z0-9._~-]{1,128}$", "must be 1 to 128 characters of letters, digits and ._~-"
)
# Idempotency keys (AIP-155): a claim id's characters, and `:` and `/` for namespacing.
REQUEST_ID: Final = Grammar(
    "^[A-Za-z0-9._~:/-]{1,128}$", "must be 1 to 128 characters of letters, digits and ._~:/-"
)
# A BCP-47 tag's outline, checked before `langcodes` judges the tag itself.
LANGUAGE_SHAPE: Final = Grammar(
    "^[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*$", "is not a valid BCP-47 language tag"
)
