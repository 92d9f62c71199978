"""One module per `tristudio` command or command group (registered in cli/app.py)."""
