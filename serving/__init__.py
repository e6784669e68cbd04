"""Adapters that run: the registry client, the `fraud` command line, and (later) scorers."""
