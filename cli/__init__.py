"""The `fraud` command line: the one front of every user action (DESIGN.md §2)."""
