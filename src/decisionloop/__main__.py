"""`python -m decisionloop` runs the CLI."""

from decisionloop.cli.main import main

main()
