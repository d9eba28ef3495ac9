"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

Write the SQL by hand, and change migrations/schema.py to match: a test compares the two.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op
${imports if imports else ""}
revision: str = ${repr(up_revision)}
down_revision: str | Sequence[str] | None = ${repr(down_revision)}
branch_labels: str | Sequence[str] | None = ${repr(branch_labels)}
depends_on: str | Sequence[str] | None = ${repr(depends_on)}


def upgrade() -> None:
    """TODO: say what this revision adds or changes."""
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    """TODO: say how this undoes `upgrade`."""
    ${downgrades if downgrades else "pass"}
