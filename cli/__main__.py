"""`python -m tristudio.cli ...` is the `tristudio` command."""

from tristudio.cli.app import main

main()
