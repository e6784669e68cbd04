"""`fraud compare` against real registries: the session's (`fraud mlflow` over versions the real
pipeline registered), and one behind MLflow's basic-auth app with a reader and an editor login.

The drift monitor's answer comes from a small HTTP server on 127.0.0.1 serving documents built from
the shared contract of /v1/live (tests/live_document.py): a stand-in for the monitor only, so that
the figures, and so the table and the tags, are known in advance. The real monitor's /v1/live is
tested with the monitor itself (tests/integration/test_monitor.py)."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.harness import FRAUD, Service, free_port
from tests.integration.registry_server import MODEL, RegistryServer
from tests.integration.test_cli_errors import assert_one_line_error, run_all
from tests.integration.test_registry_auth import EDITOR, READER, AuthRegistry, auth_env
from tests.live_document import document, model, production_and_challenger, window

LIVE_TAGS = {
    *(f"live_{f}" for f in ("precision", "recall", "auprc", "alerts_per_1000")),
    *(f"live_{f}" for f in ("transactions", "frauds", "window", "compared_at")),
    *(f"live_production_{f}" for f in ("precision", "recall", "auprc", "alerts_per_1000")),
    *(f"live_production_{f}" for f in ("transactions", "frauds", "version")),
}


@contextlib.contextmanager
def monitor_stand_in(documents: Mapping[str, dict[str, Any]]) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 answering GET <prefix>/v1/live with documents[prefix] (the
    prefix "" is the root, as the monitor's); its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            prefix = self.path.removesuffix("/v1/live")
            if not self.path.endswith("/v1/live") or prefix not in documents:
                self.send_error(404)
                return
            body = json.dumps(documents[prefix]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@contextlib.contextmanager
def aliases_kept(uri: str) -> Iterator[None]:
    """Put the registered model's aliases back as they were, whatever the test moved."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    before = dict(client.get_registered_model(MODEL).aliases)
    try:
        yield
    finally:
        after = dict(client.get_registered_model(MODEL).aliases)
        for alias in after.keys() - before.keys():
            client.delete_registered_model_alias(MODEL, alias)
        for alias, version in before.items():
            if after.get(alias) != version:
                client.set_registered_model_alias(MODEL, alias, str(version))


def version_tags(uri: str, version: str) -> dict[str, str]:
    from mlflow import MlflowClient

    return dict(MlflowClient(tracking_uri=uri).get_model_version(MODEL, version).tags)


def test_compare_tags_the_challenger_and_says_what_is_missing(
    registry: RegistryServer, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=registry.uri)
    production_only = document(production_and_challenger()["models"][0])
    documents = {"": production_and_challenger(), "/production-only": production_only}
    silent = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with monitor_stand_in(documents) as monitor, aliases_kept(registry.uri):
        client.set_registered_model_alias(MODEL, "production", "1")
        client.set_registered_model_alias(MODEL, "challenger", "2")
        port = monitor.rsplit(":", 1)[1]
        try:
            tagged, default, not_answering, no_figures = run_all(
                [
                    [FRAUD, "compare", "--monitor", monitor, "--tag"],
                    [FRAUD, "compare"],  # the monitor's port from FRAUD_MONITOR_METRICS_PORT
                    [FRAUD, "compare", "--monitor", silent],
                    [FRAUD, "compare", "--monitor", f"{monitor}/production-only"],
                ],
                {**registry.env, "FRAUD_MONITOR_METRICS_PORT": port},
                tmp_path,
            )
            tags = version_tags(registry.uri, "2")
            client.delete_registered_model_alias(MODEL, "challenger")
            ((no_challenger_code, no_challenger),) = run_all(
                [[FRAUD, "compare", "--monitor", monitor]], registry.env, tmp_path
            )
        finally:
            for key in LIVE_TAGS:  # the shared registry's versions as the pipeline left them
                with contextlib.suppress(Exception):
                    client.delete_model_version_tag(MODEL, "2", key)

    code, output = tagged
    print(output)  # the README's example
    assert code == 0, output
    assert "production v1" in output and "challenger v2" in output
    assert "live, last 10,000 resolved" in output and "offline, test split" in output
    assert f"live figures from {monitor}/v1/live" in output.replace("\n", "")
    offline_auprc = float(version_tags(registry.uri, "1")["auprc"])
    assert f"{offline_auprc:.4f}" in output  # the registry's test metrics beside the live ones
    assert f"tagged {MODEL} version 2 with {len(LIVE_TAGS)} live_* tags" in output
    assert tags.keys() >= LIVE_TAGS, sorted(tags)
    assert float(tags["live_recall"]) == pytest.approx(23 / 25)
    assert float(tags["live_production_recall"]) == pytest.approx(21 / 25)
    assert tags["live_transactions"] == "10000" and tags["live_frauds"] == "25"
    assert tags["live_production_version"] == "1" and tags["live_window"] == "sliding"
    assert "threshold" in tags, "the pipeline's tags stay"

    code, output = default
    assert code == 0, output
    assert "challenger v2" in output and "tagged" not in output

    code, output = not_answering
    assert code == 1, output
    assert_one_line_error(output, f"{silent}/v1/live", "`fraud monitor`", "`fraud up`")

    code, output = no_figures
    assert code == 1, output
    assert_one_line_error(
        output, "no live figures yet for challenger (version 2)", "fraud replay --labels-after"
    )

    assert no_challenger_code == 1, no_challenger
    assert_one_line_error(no_challenger, f"no version of {MODEL} is the challenger")


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthRegistry]:
    """`fraud mlflow` with logins, versions 1 (production) and 2 (challenger)."""
    import mlflow

    workdir = tmp_path_factory.mktemp("compare-auth")
    port = free_port()
    command = [FRAUD, "mlflow", "--port", str(port)]
    command += ["--artifacts-destination", str(workdir / "artifacts")]
    server = Service(
        command, auth_env(workdir), workdir / "mlflow.log", port, workdir, ready_path="/health"
    )
    previous_uri = mlflow.get_tracking_uri()
    try:
        server.start().wait_for(timeout=90, poll=0.5)
        registry = AuthRegistry(workdir, server)
        assert [registry.register_version(), registry.register_version()] == ["1", "2"]
        assert registry.set_alias(EDITOR, "1") == 200
        assert registry.set_alias(EDITOR, "2", alias="challenger") == 200
        yield registry
    finally:
        server.terminate(timeout=20)
        mlflow.set_tracking_uri(previous_uri)


def test_tagging_needs_the_editors_login(auth_registry: AuthRegistry, tmp_path: Path) -> None:
    """The reader sees the comparison but cannot keep it: one line naming the login to set; the
    editor keeps it."""
    from tests.integration.test_registry_auth import logged_in

    small = window(2_000, 4, 5, 3)
    both = document(model("production", "1", small, small), model("challenger", "2", small, small))
    with monitor_stand_in({"": both}) as monitor:
        command = [FRAUD, "compare", "--monitor", monitor, "--tag"]
        (reader_code, reader_out), (editor_code, editor_out) = (
            run_all([command], auth_registry.client_env(login), tmp_path)[0]
            for login in (READER, EDITOR)
        )
    assert reader_code == 1, reader_out
    assert "challenger v2" in reader_out, "the table comes before the refusal"
    assert "few frauds" in reader_out
    assert_one_line_error(
        reader_out, "does not let 'reader'", "MLFLOW_TRACKING_USERNAME", "editor's login"
    )
    assert editor_code == 0, editor_out
    with logged_in(READER):
        tags = version_tags(auth_registry.uri, "2")
    assert tags.keys() >= LIVE_TAGS
    assert tags["live_frauds"] == "4"
