"""Entry point for `python -m pipelines`."""

from pipelines.cli import main

main()
