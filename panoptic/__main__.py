"""`python -m panoptic` is the `panoptic` command."""

from panoptic.cli import main

# Guarded: a service's worker processes (core.workers) import this module again as they start.
if __name__ == "__main__":
    main()
