"""`python -m panoptic` is the `panoptic` command."""

from panoptic.cli import main

main()
