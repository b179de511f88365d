"""`python -m gateway` runs the `hermes` command line."""

from gateway.cli import main

main()
