"""The REST scoring API: the model under the production alias over HTTP, with reason codes.

Run it with `fraud api` or `uvicorn serving.api:app`. It shares the stream scorer's model holder:
one way to resolve the alias, load, validate and hot-swap a version; and the stream's contract:
one transaction validator (`fraud.transaction`), one score shape (`fraud.scores`).

Modules, one concern each: `bodies` (JSON bodies into transactions), `scoring` (the /v1 routes),
`operations` (/health, /ready, /metrics), `responses` (what the routes answer), `errors` (error
answers that never quote the submitted values), `auth` (the API key), `state` (what the
lifespan builds), `middleware` (the body limit, request metrics), `access_log` (paths without
query strings), `factory` (the app).
"""

from __future__ import annotations

from typing import Any

from serving.api.factory import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    # `uvicorn serving.api:app` builds the app (and reads the settings) on first use, not at import.
    if name == "app":
        return create_app()
    raise AttributeError(name)
