"""`python -m kpilot.cli`, as the `kpilot` command."""

from kpilot.cli import main

main()
