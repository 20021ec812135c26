"""Maintenance commands, run as `python -m tools.<name>`; not part of the server."""
