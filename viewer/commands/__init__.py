"""One module per `tristudio` command or command group (registered in viewer/cli.py)."""
