"""One module per CLI command: plain functions that return an exit code (cli.py wraps them)."""
