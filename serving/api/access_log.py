"""The access log (`fraud api --access-log`) with paths only, never query strings.

A query string can carry what must not be logged (`/v1/score?card=...`). uvicorn writes each
request to the `uvicorn.access` logger as `'%s - "%s %s HTTP/%s" %d'` with the path and query
string as the third argument; a filter on that logger cuts the argument at the `?`. uvicorn
quotes the path, so the first `?` is where the query string starts. The filter sits on the
logger, not on a handler: it holds whichever logging configuration `fraud api` or
`uvicorn --log-config` applies (dictConfig keeps a logger's filters).
"""

from __future__ import annotations

import logging

ACCESS_LOGGER = "uvicorn.access"
_PATH_ARGUMENT = 2  # client, method, path and query string, HTTP version, status


class PathWithoutQuery(logging.Filter):
    """Drops the query string from uvicorn's access log records; lets every record through."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) > _PATH_ARGUMENT:
            target = args[_PATH_ARGUMENT]
            if isinstance(target, str) and "?" in target:
                path = target.split("?", 1)[0]
                record.args = (*args[:_PATH_ARGUMENT], path, *args[_PATH_ARGUMENT + 1 :])
        return True


_FILTER = PathWithoutQuery()


def drop_query_strings() -> None:
    """Install the filter on uvicorn's access logger (once, however many apps are built)."""
    logging.getLogger(ACCESS_LOGGER).addFilter(_FILTER)
