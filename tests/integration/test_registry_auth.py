"""The registry behind MLflow's basic-auth app, as `fraud mlflow` runs it with FRAUD_MLFLOW_AUTH:
without a login nothing is answered and nothing moves; the reader loads models (the API serves
one) but moves no alias; the editor registers versions and moves aliases; `fraud promote` says
which login to set; `fraud mlflow` refuses to leave loopback without logins. One server for the
module, over a store of its own."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import xgboost as xgb

from fraud.schema import FEATURE_COLUMNS
from infra.registry import LOGIN_VARIABLES
from infra.registry_auth import ensure_accounts
from infra.settings import RegistryAuthSettings
from tests.harness import FRAUD, ApiServer, Service, free_port
from tests.integration.conftest import clean_env
from tests.integration.test_cli_errors import assert_one_line_error, run_all
from tests.synthetic import synthetic_transactions

MODEL = "fraud-detector"
EDITOR = ("editor", "editor-password-1")
READER = ("reader", "reader-password-1")
Login = tuple[str, str]


def auth_env(workdir: Path, **extra: str) -> dict[str, str]:
    """What `fraud mlflow` reads: its store, the auth app's settings, both logins."""
    settings = {
        "MLFLOW_TRACKING_URI": f"sqlite:///{workdir / 'mlflow.db'}",
        "FRAUD_MLFLOW_AUTH": "true",
        "FRAUD_MLFLOW_EDITOR_USERNAME": EDITOR[0],
        "FRAUD_MLFLOW_EDITOR_PASSWORD": EDITOR[1],
        "FRAUD_MLFLOW_READER_USERNAME": READER[0],
        "FRAUD_MLFLOW_READER_PASSWORD": READER[1],
        "FRAUD_MLFLOW_AUTH_DATABASE_URI": f"sqlite:///{workdir / 'mlflow-auth.db'}",
        "FRAUD_STACK_DIR": str(workdir / "run"),
    }
    return clean_env(workdir / "home", **(settings | extra))


@contextlib.contextmanager
def logged_in(login: Login | None) -> Iterator[None]:
    """MLflow's client in this process logs in as `login` (None: no login)."""
    saved = {name: os.environ.pop(name, None) for name in LOGIN_VARIABLES}
    if login is not None:
        os.environ.update(zip(LOGIN_VARIABLES, login, strict=True))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@dataclass
class AuthRegistry:
    workdir: Path
    server: Service

    @property
    def uri(self) -> str:
        return self.server.url

    def client_env(self, login: Login | None) -> dict[str, str]:
        """The environment of a `fraud` client of this server, logged in as `login`."""
        env = clean_env(self.workdir / "home", MLFLOW_TRACKING_URI=self.uri)
        if login is not None:
            env.update(zip(LOGIN_VARIABLES, login, strict=True))
        return env

    def register_version(self) -> str:
        """A servable version (xgboost flavor, the features' signature, a threshold tag), logged
        and registered as the editor; returns its number."""
        import mlflow
        import mlflow.xgboost
        from mlflow.models import infer_signature

        frame = synthetic_transactions(rows=400, seed=5)
        features = frame.loc[:, list(FEATURE_COLUMNS)]
        data = xgb.DMatrix(features, label=frame["Class"])
        booster = xgb.train({"objective": "binary:logistic", "nthread": 1}, data, 5)
        example = features.head(5)
        with logged_in(EDITOR):
            mlflow.set_tracking_uri(self.uri)
            mlflow.set_experiment("registry-auth")
            with mlflow.start_run():
                mlflow.log_text("{}", "drift_baseline/baseline.json")  # as the baseline stage
                info = mlflow.xgboost.log_model(
                    booster,
                    name="model",
                    signature=infer_signature(example, booster.predict(xgb.DMatrix(example))),
                    input_example=example,
                    model_format="ubj",
                    pip_requirements=["xgboost"],  # inferring them runs a Python for seconds
                )
            version = mlflow.register_model(info.model_uri, MODEL, tags={"threshold": "0.5"})
        return str(version.version)

    def alias(self, alias: str = "production") -> str:
        from mlflow import MlflowClient

        with logged_in(READER):
            return str(MlflowClient(self.uri).get_model_version_by_alias(MODEL, alias).version)

    def set_alias(self, login: Login | None, version: str, alias: str = "production") -> int:
        """POST the REST call that moves an alias, as the MLflow UI does; the HTTP status."""
        body = json.dumps({"name": MODEL, "alias": alias, "version": version}).encode()
        request = urllib.request.Request(
            f"{self.uri}/api/2.0/mlflow/registered-models/alias", data=body, method="POST"
        )
        request.add_header("Content-Type", "application/json")
        if login is not None:
            token = b64encode(f"{login[0]}:{login[1]}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthRegistry]:
    """`fraud mlflow` with logins on a free port, holding versions 1 (production) and 2."""
    import mlflow

    workdir = tmp_path_factory.mktemp("registry-auth")
    port = free_port()
    command = [FRAUD, "mlflow", "--port", str(port)]
    command += ["--artifacts-destination", str(workdir / "artifacts")]
    server = Service(
        command, auth_env(workdir), workdir / "mlflow.log", port, workdir, ready_path="/health"
    )
    previous_uri = mlflow.get_tracking_uri()
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"  # keeps the test log readable
    try:
        server.start().wait_for(timeout=90, poll=0.5)
        registry = AuthRegistry(workdir, server)
        assert [registry.register_version(), registry.register_version()] == ["1", "2"]
        assert registry.set_alias(EDITOR, "1") == 200
        yield registry
    finally:
        server.terminate(timeout=20)
        mlflow.set_tracking_uri(previous_uri)


def test_the_server_writes_its_auth_config_for_its_user_only(registry: AuthRegistry) -> None:
    (config,) = (registry.workdir / "run").glob("mlflow-auth-*.ini")
    assert config.stat().st_mode & 0o777 == 0o600
    text = config.read_text()
    assert "default_permission = READ" in text
    assert f"admin_username = {EDITOR[0]}" in text
    assert EDITOR[1] not in text and READER[1] not in text, "no password on disk"
    assert registry.server.get("/health")[0] == 200  # what healthchecks ask, without a login


def test_without_a_login_nothing_is_read_and_no_alias_moves(registry: AuthRegistry) -> None:
    before = registry.alias()
    other = "1" if before == "2" else "2"
    assert registry.set_alias(None, other) == 401
    assert registry.set_alias(("reader", "not-the-password"), other) == 401
    status, _ = registry.server.get(f"/api/2.0/mlflow/registered-models/get?name={MODEL}")
    assert status == 401
    assert registry.alias() == before


def test_the_reader_loads_models_but_moves_no_alias(registry: AuthRegistry) -> None:
    from mlflow import MlflowClient
    from mlflow.artifacts import download_artifacts
    from mlflow.exceptions import MlflowException

    before = registry.alias()
    with logged_in(READER):
        client = MlflowClient(registry.uri)
        version = client.get_model_version_by_alias(MODEL, "production")
        assert version.version == before
        assert version.tags["threshold"] == "0.5"
        folder = Path(
            download_artifacts(
                artifact_uri=f"models:/{MODEL}@production",
                dst_path=str(registry.workdir / "reader-download"),
            )
        )
        assert (folder / "MLmodel").is_file()
        baseline = download_artifacts(  # what the drift monitor reads of the version's run
            run_id=version.run_id,
            artifact_path="drift_baseline",
            dst_path=str(registry.workdir / "reader-baseline"),
        )
        assert (Path(baseline) / "baseline.json").is_file()
        with pytest.raises(MlflowException) as refused:
            client.set_registered_model_alias(MODEL, "production", "1" if before == "2" else "2")
        assert refused.value.error_code == "PERMISSION_DENIED"
        with pytest.raises(MlflowException) as refused:
            client.create_model_version(MODEL, str(version.source), run_id=version.run_id)
        assert refused.value.error_code == "PERMISSION_DENIED"
    assert registry.set_alias(READER, before) == 403
    assert registry.alias() == before


def test_the_api_serves_with_the_readers_login(registry: AuthRegistry) -> None:
    """The serving processes only read: `fraud api` loads the production version as the reader."""
    api = ApiServer(registry.client_env(READER), registry.workdir / "api.log", cwd=registry.workdir)
    try:
        api.start().wait_ready(timeout=90)
        status, body = api.get("/v1/model")
        assert status == 200, body
        assert json.loads(body)["version"] == registry.alias()
    finally:
        api.terminate(timeout=20)


def test_the_editor_registers_and_moves_aliases(registry: AuthRegistry) -> None:
    version = registry.register_version()
    assert registry.set_alias(EDITOR, version, alias="challenger") == 200
    assert registry.alias("challenger") == version


def test_promote_needs_the_editors_login(registry: AuthRegistry) -> None:
    """As the reader or without a login, one line naming the variables to set (side by side
    with the editor's, which moves the alias: the refusals do not depend on it)."""
    before = registry.alias()
    target = "1" if before == "2" else "2"
    promote = [FRAUD, "promote", "--version", target]
    processes = [
        subprocess.Popen(
            promote,
            cwd=registry.workdir,
            env=registry.client_env(login),
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for login in (READER, None, EDITOR)
    ]
    try:
        reader_out, anonymous_out, editor_out = (p.communicate(timeout=120)[0] for p in processes)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    reader_code, anonymous_code, editor_code = (p.returncode for p in processes)
    assert reader_code == 1, reader_out
    assert_one_line_error(
        reader_out, "does not let 'reader'", "MLFLOW_TRACKING_USERNAME", "editor's login"
    )
    assert anonymous_code == 1, anonymous_out
    assert_one_line_error(anonymous_out, "asks for a login", "MLFLOW_TRACKING_PASSWORD")
    assert editor_code == 0, editor_out
    assert f"{MODEL}@production -> version {target} (was version {before})" in editor_out
    assert registry.alias() == target


def test_mlflow_refuses_bad_logins_and_open_interfaces(tmp_path: Path) -> None:
    """Beyond loopback without FRAUD_MLFLOW_AUTH, and FRAUD_MLFLOW_AUTH without a password:
    one line naming the variable, and no server."""
    open_env = {k: v for k, v in auth_env(tmp_path).items() if k != "FRAUD_MLFLOW_AUTH"}
    missing = {k: v for k, v in auth_env(tmp_path).items() if k != "FRAUD_MLFLOW_READER_PASSWORD"}
    short = auth_env(tmp_path, FRAUD_MLFLOW_EDITOR_PASSWORD="short")
    mlflow = [FRAUD, "mlflow", "--port", str(free_port())]
    results = [
        *run_all([[*mlflow, "--host", "0.0.0.0"]], open_env, tmp_path),
        *run_all([mlflow], missing, tmp_path),
        *run_all([mlflow], short, tmp_path),
    ]
    for code, _ in results:
        assert code == 1, results
    (_, open_out), (_, missing_out), (_, short_out) = results
    assert_one_line_error(open_out, "--host 0.0.0.0", "FRAUD_MLFLOW_AUTH=true")
    assert_one_line_error(missing_out, "FRAUD_MLFLOW_READER_PASSWORD", "required")
    assert_one_line_error(short_out, "FRAUD_MLFLOW_EDITOR_PASSWORD", "12 characters")


def test_the_accounts_follow_the_settings_at_every_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `fraud mlflow` does to MLflow's user store before the server starts: creates both
    accounts once, then puts a changed password or role back as the settings say."""
    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore

    for name, value in auth_env(tmp_path).items():
        if name.startswith("FRAUD_"):
            monkeypatch.setenv(name, value)
    settings = RegistryAuthSettings()
    assert ensure_accounts(settings) == ["created editor 'editor'", "created reader 'reader'"]
    assert ensure_accounts(settings) == []
    monkeypatch.setenv("FRAUD_MLFLOW_READER_PASSWORD", "reader-password-2")
    store = SqlAlchemyStore()
    store.init_db(settings.mlflow_auth_database_uri)  # type: ignore[no-untyped-call]
    store.update_user(READER[0], is_admin=True)
    assert ensure_accounts(RegistryAuthSettings()) == [
        "new password for reader 'reader'",
        "reader 'reader' no longer admin",
    ]
    assert store.authenticate_user(READER[0], "reader-password-2")
    assert not store.authenticate_user(READER[0], READER[1])
    assert not store.get_user(READER[0]).is_admin
    assert store.get_user(EDITOR[0]).is_admin
    store.engine.dispose()
