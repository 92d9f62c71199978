"""The `tristudio` command line: `app.py` builds the typer app, `commands/` holds one module per command (group).

It sits beside core/ and viewer/ because it drives both: every command calls the engine (tristudio.core) through the
same small APIs the viewer uses, and `tristudio view` (or no command) opens the viewer.
"""
