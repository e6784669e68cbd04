"""Benchmark the REST scoring API (`fraud api`) over HTTP: `make bench-api`.

The benchmark runs `fraud api --workers N` as a separate process (its own process group, a free
port on 127.0.0.1, the project's MLflow store, the version under Production or
FRAUD_MODEL_ALIAS) and loads it from separate processes: `wrk` (a C load generator) and an
open-loop generator in Python (`python -m benchmarks.bench_api load-gen`, keep-alive HTTP/1.1
over asyncio streams). Requests only ever go to 127.0.0.1. Each repetition (`--runs`) starts
fresh servers and measures:

1. single-row saturation: wrk --latency, one thread, POSTing /v1/score bodies that cycle through
   500 real rows of the test split, 10 s per point, 16 and 64 connections; 1 and 2 workers.
   requests/s, wrk's latency percentiles (closed loop: a slow response delays the next request
   on its connection, so these understate tail latency under a fixed load), non-2xx responses
   and socket errors. The headline is the best requests/s over the connection counts;
2. single-row latency at a fixed rate: 200 requests/s for 20 s from the open-loop generator
   (8 connections; sends are scheduled at fixed intervals whatever the responses, and latency
   runs from the scheduled send time to the end of the response); 1 and 2 workers;
3. 1,000-row batches (/v1/score/batch, 5 different batches of real rows, about 0.8 MB each):
   (a) 50 sequential requests on one connection: the server's own time (its `server-timing`
   header: request arrival to response start) and the client's latency; (b) saturation with wrk
   at 1, 2 and 4 connections (2 and 4 with 2 workers: one connection keeps one worker busy at
   most): requests/s and rows/s; (c) 10 requests/s for 20 s from the open-loop generator;
4. the floor, in the benchmark process, before the servers start: the same version's native
   booster (one thread, as the API loads it) on the same rows: inplace_predict of one row
   (median of 500 calls over different rows), of a 1,000-row batch (median of 30 calls) and
   TreeSHAP contributions of one row (predict(DMatrix, pred_contribs=True), median of 200).

The server's CPU time (every process of its group) is recorded per measurement, and so is the
load generator's (it shares the machine's cores with the server). Writes reports/bench/api.json
with every run, the medians and the targets.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import importlib.metadata
import json
import math
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from benchmarks.bench_stream import (
    BenchError,
    ModelChoice,
    ServiceProcess,
    choose_model,
    cpu_seconds,
    fraud_command,
    free_port,
    log_issues,
    median,
    peak_rss_mb,
    percentiles,
)
from fraud.schema import FEATURE_COLUMNS, TIME_COLUMN

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "data/processed/test.parquet"
OUT = ROOT / "reports/bench/api.json"
HOST = "127.0.0.1"

SINGLE_ROWS = 500
BATCH_ROWS = 1000
BATCHES = 5
SATURATION_SECONDS = 10
CONNECTIONS = (16, 64)
BATCH_CONNECTIONS = (1, 2, 4)
RATE = 200.0
RATE_SECONDS = 20
RATE_CONNECTIONS = 8
BATCH_SEQUENTIAL = 50
BATCH_RATE = 10.0
BATCH_RATE_CONNECTIONS = 4
WARMUP_SECONDS = 2
FLOOR_SINGLE_CALLS = 500
FLOOR_BATCH_CALLS = 30
FLOOR_CONTRIB_CALLS = 200

TARGET_P99_MS = 10.0
TARGET_SINGLE_RPS = 1500.0
TARGET_BATCH_SERVER_MS = 20.0

# Upper bounds on every wait, so the benchmark always ends (and stops what it started).
READY_TIMEOUT = 180.0
STOP_TIMEOUT = 30.0
REQUEST_TIMEOUT = 10.0  # per request, in wrk (--timeout) and in the open-loop generator
GRACE_SECONDS = 60.0  # a load generator still running this long after its duration is killed

# Environment the servers do not inherit: the benchmark picks host, port and workers itself,
# measures without an API key, and lets each server keep its metrics in a directory of its own.
SERVER_ENV_DROPPED = (
    "FRAUD_API_HOST",
    "FRAUD_API_PORT",
    "FRAUD_API_WORKERS",
    "FRAUD_API_KEY",
    "PROMETHEUS_MULTIPROC_DIR",
)

console = Console(stderr=True, soft_wrap=True)


# -- processes we start ------------------------------------------------------------------------


class Children:
    """Every process the benchmark starts, each in its own session; stopped by process group."""

    def __init__(self) -> None:
        self.running: list[subprocess.Popen[bytes]] = []

    def start(
        self, command: list[str], log_path: Path, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.running.append(process)
        return process

    def stop(self, process: subprocess.Popen[bytes]) -> int | None:
        """SIGTERM the process group, SIGKILL after STOP_TIMEOUT; the exit code (None: killed)."""
        try:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
                try:
                    return process.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=STOP_TIMEOUT)
                    return None
            return process.returncode
        finally:
            if process in self.running:
                self.running.remove(process)

    def stop_all(self) -> None:
        for process in list(self.running):
            try:
                self.stop(process)
            except Exception as exc:  # keep stopping the others
                console.print(f"[red]stopping pid {process.pid} failed: {exc!r}")


def group_pids(pgid: int) -> list[int]:
    """The processes whose process group is `pgid` (a server and its workers)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            # After the command name: state, ppid, pgrp.
            if int(stat.read_text().rsplit(")", 1)[1].split()[2]) == pgid:
                pids.append(int(stat.parent.name))
    return pids


def group_cpu_seconds(pgid: int) -> dict[int, float]:
    cpu = {}
    for pid in group_pids(pgid):
        with contextlib.suppress(OSError):
            cpu[pid] = cpu_seconds(pid)
    return cpu


def children_cpu_seconds() -> float:
    """utime + stime of the benchmark's reaped children (the load generators, once done)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def git_commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}{' (uncommitted changes)' if dirty else ''}"


# -- the API server ----------------------------------------------------------------------------


@dataclass
class ApiServer(ServiceProcess):
    """One `fraud api --workers N` process group on a free port, with its log."""

    children: Children
    workers: int
    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    model_version: str | None = None

    def start(self) -> ApiServer:
        command = [
            fraud_command(), "api", "--host", HOST, "--port", str(self.port),
            "--workers", str(self.workers),
        ]  # fmt: skip
        self.process = self.children.start(command, self.log_path, self.env)
        self.started_at = time.perf_counter()
        return self

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.port}{path}"

    def check_alive(self) -> None:
        self.raise_if_exited(f"the API server ({self.workers} worker(s))")

    def wait_ready(self) -> float:
        """Block until every worker has loaded the model; seconds since the process started.

        /ready answers from whichever worker takes the connection, so with several workers it
        also waits until the summed fraud_model_reloads_total{result="success"} counts them all.
        """
        deadline = time.monotonic() + READY_TIMEOUT
        loaded = 0.0
        while time.monotonic() < deadline:
            self.check_alive()
            status, body = self.get("/ready", timeout=1.0)
            if status == 200:
                self.model_version = str(json.loads(body).get("model_version"))
                loaded = self.metrics().get('fraud_model_reloads_total{result="success"}', 0.0)
                if loaded >= self.workers:
                    return time.perf_counter() - self.started_at
            time.sleep(0.1)
        raise BenchError(
            f"the API server did not have the model loaded in all {self.workers} worker(s) within "
            f"{READY_TIMEOUT:.0f} s ({loaded:.0f} loaded); the end of its log:\n{self.log_tail()}"
        )

    def cpu(self) -> dict[int, float]:
        return group_cpu_seconds(self.pid)

    def peak_rss_mb(self) -> list[float]:
        rss = []
        for pid in sorted(group_pids(self.pid)):
            with contextlib.suppress(OSError):
                rss.append(round(peak_rss_mb(pid), 1))
        return rss

    def stop(self) -> int | None:
        return self.children.stop(self.process) if self.process is not None else None


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """Server CPU seconds between two samples (a process new since `before` counts in full)."""
    return round(sum(value - before.get(pid, 0.0) for pid, value in after.items()), 3)


# -- the data ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    """The request bodies (files the load generators read, one body a line) and their rows."""

    single_file: Path
    batch_file: Path
    single_rows: npt.NDArray[np.float32]  # (SINGLE_ROWS, features)
    batches: list[npt.NDArray[np.float32]]  # BATCHES x (BATCH_ROWS, features)
    batch_body_bytes: int


def transaction(prefix: str, index: int, row: dict[Any, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"transaction_id": f"{prefix}-{index:06d}"}
    body[TIME_COLUMN] = float(row[TIME_COLUMN])
    body.update({name: float(row[name]) for name in FEATURE_COLUMNS})
    return body


def build_workload(workdir: Path) -> Workload:
    """500 single rows and 5 batches of 1,000 rows, spread evenly over the test split."""
    import pandas as pd

    frame = pd.read_parquet(SOURCE, columns=[TIME_COLUMN, *FEATURE_COLUMNS])
    needed = SINGLE_ROWS + BATCHES * BATCH_ROWS
    if len(frame) < needed:
        raise BenchError(f"{SOURCE.relative_to(ROOT)} has {len(frame)} rows, {needed} needed")
    picked = frame.iloc[np.linspace(0, len(frame) - 1, needed).astype(np.int64)]
    records = picked.to_dict("records")
    features = picked[list(FEATURE_COLUMNS)].to_numpy(dtype=np.float32)
    single_file = workdir / "single.jsonl"
    with single_file.open("wb") as out:
        for i in range(SINGLE_ROWS):
            out.write(orjson.dumps(transaction("bench", i, records[i])) + b"\n")
    batch_file = workdir / "batches.jsonl"
    batches = []
    sizes = []
    with batch_file.open("wb") as out:
        for b in range(BATCHES):
            start = SINGLE_ROWS + b * BATCH_ROWS
            body = orjson.dumps({
                "transactions": [
                    transaction(f"bench-b{b}", i, records[start + i]) for i in range(BATCH_ROWS)
                ]
            })  # fmt: skip
            out.write(body + b"\n")
            sizes.append(len(body))
            batches.append(features[start : start + BATCH_ROWS])
    return Workload(
        single_file, batch_file, features[:SINGLE_ROWS], batches, int(statistics.mean(sizes))
    )


# -- 4. the floor: the booster alone -----------------------------------------------------------


def load_booster(model: ModelChoice, workdir: Path) -> Any:
    """The version's native booster from its MLflow xgboost flavor folder, one thread."""
    import xgboost as xgb
    import yaml
    from mlflow import MlflowClient
    from mlflow.artifacts import download_artifacts

    uri = MlflowClient().get_model_version_download_uri(model.name, model.version)
    folder = Path(download_artifacts(artifact_uri=uri, dst_path=str(workdir / "model")))
    mlmodel = yaml.safe_load((folder / "MLmodel").read_text())
    flavor = mlmodel.get("flavors", {}).get("xgboost")
    if not flavor:
        raise BenchError(f"{model.name} version {model.version} has no xgboost flavor")
    booster = xgb.Booster()
    booster.load_model(str(folder / flavor["data"]))
    booster.set_param({"nthread": 1})
    return booster


def floor(booster: Any, workload: Workload) -> dict[str, Any]:
    """The booster calls the API makes, timed alone on the same rows (one thread)."""
    import xgboost as xgb

    rows = [workload.single_rows[i : i + 1] for i in range(len(workload.single_rows))]
    for row in rows[:20]:  # warm-up
        booster.inplace_predict(row, validate_features=False)
    single = []
    for i in range(FLOOR_SINGLE_CALLS):
        began = time.perf_counter()
        booster.inplace_predict(rows[i % len(rows)], validate_features=False)
        single.append((time.perf_counter() - began) * 1e6)
    booster.inplace_predict(workload.batches[0], validate_features=False)
    batch = []
    for i in range(FLOOR_BATCH_CALLS):
        began = time.perf_counter()
        booster.inplace_predict(
            workload.batches[i % len(workload.batches)], validate_features=False
        )
        batch.append((time.perf_counter() - began) * 1e3)
    names = list(FEATURE_COLUMNS)
    contribs = []
    for i in range(FLOOR_CONTRIB_CALLS):
        began = time.perf_counter()
        matrix = xgb.DMatrix(rows[i % len(rows)], feature_names=names, nthread=1)
        booster.predict(matrix, pred_contribs=True, validate_features=False)
        contribs.append((time.perf_counter() - began) * 1e6)
    return {
        "single_row_inplace_predict_us": {
            "calls": FLOOR_SINGLE_CALLS, "median": round(statistics.median(single), 1),
            "p99": round(float(np.percentile(single, 99)), 1),
        },
        "batch_1000_inplace_predict_ms": {
            "calls": FLOOR_BATCH_CALLS, "median": round(statistics.median(batch), 3),
            "p99": round(float(np.percentile(batch, 99)), 3),
        },
        "single_row_contributions_us": {
            "calls": FLOOR_CONTRIB_CALLS, "median": round(statistics.median(contribs), 1),
            "p99": round(float(np.percentile(contribs, 99)), 1),
        },
    }  # fmt: skip


# -- wrk ---------------------------------------------------------------------------------------

# One Lua state per wrk thread: init() reads the bodies and formats every request once;
# request() cycles through them; response() counts non-2xx answers; done() sums the threads and
# prints one JSON line (times in microseconds).
WRK_SCRIPT = """
local bodies_path = %(bodies)s
local route = %(route)s
local requests = {}
local count = 0
local next_index = 0
local threads = {}
non2xx = 0
first_bad_status = 0

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local file = assert(io.open(bodies_path, "r"))
  for line in file:lines() do
    if #line > 0 then
      count = count + 1
      requests[count] = wrk.format(
        "POST", route, {["Content-Type"] = "application/json"}, line)
    end
  end
  file:close()
end

function request()
  next_index = next_index %% count + 1
  return requests[next_index]
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    if first_bad_status == 0 then first_bad_status = status end
  end
end

function done(summary, latency, requests_)
  local bad, first = 0, 0
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("non2xx")
    if first == 0 then first = thread:get("first_bad_status") end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"duration_us":%%d,"requests":%%d,"bytes":%%d,"non2xx":%%d,' ..
    '"first_non2xx_status":%%d,"errors":{"connect":%%d,"read":%%d,"write":%%d,' ..
    '"status":%%d,"timeout":%%d},"latency_us":{"min":%%d,"mean":%%.1f,"stdev":%%.1f,' ..
    '"p50":%%d,"p75":%%d,"p90":%%d,"p99":%%d,"p99.9":%%d,"max":%%d}}\\n',
    summary.duration, summary.requests, summary.bytes, bad, first, e.connect, e.read,
    e.write, e.status, e.timeout, latency.min, latency.mean, latency.stdev,
    latency:percentile(50), latency:percentile(75), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max))
end
"""


def write_wrk_script(workdir: Path, name: str, bodies: Path, route: str) -> Path:
    path = workdir / f"{name}.lua"
    # json.dumps quotes a path or route the way Lua reads a double-quoted string.
    path.write_text(WRK_SCRIPT % {"bodies": json.dumps(str(bodies)), "route": json.dumps(route)})
    return path


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise BenchError(
            "wrk is not installed: run `make system-deps` (it installs the Debian package wrk)"
        )
    return found


def wrk_version() -> str:
    result = subprocess.run(
        [wrk_binary(), "--version"], capture_output=True, text=True, timeout=10, check=False
    )
    return (result.stdout or result.stderr).splitlines()[0].strip()


# -- the benchmark -----------------------------------------------------------------------------


@dataclass
class Bench:
    children: Children
    workload: Workload
    scripts: dict[str, Path]
    model: ModelChoice
    logs: Path
    progress: Progress
    problems: list[str] = field(default_factory=list)

    def server_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in SERVER_ENV_DROPPED}
        env["FRAUD_MODEL_NAME"] = self.model.name
        env["FRAUD_MODEL_ALIAS"] = self.model.alias
        return env

    def start_server(self, workers: int, label: str) -> tuple[ApiServer, float]:
        server = ApiServer(
            self.children, workers, self.server_env(), self.logs / f"{label}-api.log"
        ).start()
        task = self.progress.add_task(f"{label}: start the API, {workers} worker(s)", total=None)
        try:
            startup = server.wait_ready()
        finally:
            self.progress.remove_task(task)
        if server.model_version != self.model.version:
            self.problem(
                f"{label}: the API serves version {server.model_version}, the benchmark chose "
                f"{self.model.version} (was the alias moved?)"
            )
        return server, startup

    def problem(self, what: str) -> None:
        self.problems.append(what)
        console.print(f"[bold red]PROBLEM: {what}")

    def wait(self, process: subprocess.Popen[bytes], seconds: float, task: TaskID) -> int | None:
        """Wait for a load generator (progress on `task`); kill it when far past its time."""
        began = time.monotonic()
        while process.poll() is None:
            elapsed = time.monotonic() - began
            if elapsed > seconds + GRACE_SECONDS:
                self.children.stop(process)
                raise BenchError(
                    f"a load generator (pid {process.pid}) was still running {elapsed:.0f} s "
                    f"after starting a {seconds:.0f} s measurement; it was stopped"
                )
            self.progress.update(task, completed=min(elapsed, seconds))
            time.sleep(0.1)
        self.children.stop(process)  # reaped: only forgets it
        return process.returncode

    def measure(
        self, server: ApiServer, label: str, command: list[str], seconds: float, log: Path
    ) -> dict[str, float]:
        """Run one load generator against `server`; its exit code and both sides' CPU."""
        server.check_alive()
        task = self.progress.add_task(label, total=seconds)
        cpu0, load_cpu0 = server.cpu(), children_cpu_seconds()
        began = time.perf_counter()
        try:
            process = self.children.start(command, log)
            code = self.wait(process, seconds, task)
        finally:
            self.progress.remove_task(task)
        wall = time.perf_counter() - began
        cpu = cpu_used(cpu0, server.cpu())
        server.check_alive()
        if code != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            raise BenchError(f"{label}: the load generator exited with code {code}:\n{tail}")
        return {
            "wall_seconds": round(wall, 3),
            "server_cpu_seconds": cpu,
            "load_generator_cpu_seconds": round(children_cpu_seconds() - load_cpu0, 3),
        }

    # -- wrk --------------------------------------------------------------------------------

    def wrk(
        self, server: ApiServer, label: str, script: str, route: str, connections: int,
        seconds: int, rows_per_request: int = 1,
    ) -> dict[str, Any]:  # fmt: skip
        log = self.logs / f"{label}.wrk.txt"
        command = [
            wrk_binary(), "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
            "--timeout", f"{REQUEST_TIMEOUT:.0f}s", "-s", str(self.scripts[script]),
            server.url(route),
        ]  # fmt: skip
        usage = self.measure(
            server, f"{label}: wrk, {connections} connection(s)", command, seconds, log
        )
        output = log.read_text(errors="replace")
        found = [line for line in output.splitlines() if line.startswith("BENCH_JSON ")]
        if not found:
            raise BenchError(f"{label}: wrk printed no summary; its output:\n{output[-2000:]}")
        summary = json.loads(found[-1].removeprefix("BENCH_JSON "))
        seconds_run = summary["duration_us"] / 1e6
        errors = summary["errors"]
        socket_errors = errors["connect"] + errors["read"] + errors["write"] + errors["timeout"]
        requests = summary["requests"]
        result = {
            "connections": connections,
            "seconds": round(seconds_run, 3),
            "requests": requests,
            "requests_per_s": round(requests / seconds_run, 1),
            "rows_per_s": round(requests * rows_per_request / seconds_run, 1),
            "latency_ms": {
                k: round(float(v) / 1000.0, 3) for k, v in summary["latency_us"].items()
            },
            "non2xx": summary["non2xx"],
            "first_non2xx_status": summary["first_non2xx_status"] or None,
            "socket_errors": {k: v for k, v in errors.items() if k != "status"},
            "server_cpu_us_per_request": round(usage["server_cpu_seconds"] / requests * 1e6, 1)
            if requests
            else None,
            **usage,
        }
        if summary["non2xx"] or socket_errors:
            self.problem(
                f"{label}: wrk saw {summary['non2xx']} non-2xx response(s) (first status "
                f"{summary['first_non2xx_status']}) and {socket_errors} socket error(s) "
                f"{result['socket_errors']} in {requests} requests"
            )
        if requests == 0:
            raise BenchError(f"{label}: wrk completed no request; its output:\n{output[-2000:]}")
        return result

    # -- the open-loop generator ------------------------------------------------------------

    def load_gen(
        self, server: ApiServer, label: str, *, route: str, bodies: Path, connections: int,
        rate: float, count: int,
    ) -> dict[str, Any]:  # fmt: skip
        """Run `load-gen`: at `rate` requests/s (open loop) or, with rate 0, `count` sequential
        requests on one connection. Latency percentiles, server-timing, rate, errors."""
        out = self.logs / f"{label}.loadgen.json"
        command = [
            sys.executable, "-m", "benchmarks.bench_api", "load-gen", "--port", str(server.port),
            "--route", route, "--bodies", str(bodies), "--connections", str(connections),
            "--rate", str(rate), "--count", str(count), "--out", str(out),
        ]  # fmt: skip
        seconds = count / rate if rate else count * 0.2
        what = f"{rate:.0f} req/s for {seconds:.0f} s" if rate else f"{count} sequential"
        usage = self.measure(
            server, f"{label}: {what}", command, seconds, self.logs / f"{label}.loadgen.log"
        )
        raw = json.loads(out.read_text())
        status = np.array(raw["status"], dtype=np.int64)
        ok = status == 200
        latency = np.array(raw["latency_ms"], dtype=np.float64)
        service = np.array(raw["service_ms"], dtype=np.float64)
        server_ms = np.array(raw["server_ms"], dtype=np.float64)
        queued = np.array(raw["queued_ms"], dtype=np.float64)
        errors = int((status == 0).sum())
        non2xx = int(((status != 0) & ((status < 200) | (status > 299))).sum())
        result = {
            "requests": count,
            "connections": connections,
            "offered_rate": rate or None,
            "achieved_send_rate": raw["achieved_send_rate"],
            "ok": int(ok.sum()),
            "non2xx": non2xx,
            "errors": errors,
            "error_examples": raw["error_examples"],
            "latency": percentiles(latency[ok]),
            "service": percentiles(service[ok]),
            "server_timing": percentiles(server_ms[ok & ~np.isnan(server_ms)]),
            "queued_before_send": percentiles(queued),
            "server_cpu_us_per_request": round(usage["server_cpu_seconds"] / count * 1e6, 1),
            **usage,
        }
        if non2xx or errors:
            self.problem(
                f"{label}: the load generator saw {non2xx} non-2xx response(s) and {errors} "
                f"error(s) in {count} requests: {raw['error_examples'][:3]}"
            )
        return result

    # -- one repetition ----------------------------------------------------------------------

    def warm_up(self, server: ApiServer, label: str) -> None:
        """Not recorded: every worker's first requests (imports, allocations) and the batch path."""
        self.wrk(server, f"{label}-warmup", "single", "/v1/score", 16, WARMUP_SECONDS)
        self.wrk(server, f"{label}-warmup-batch", "batch", "/v1/score/batch", 2, WARMUP_SECONDS)

    def run_workers(self, number: int, workers: int, args: argparse.Namespace) -> dict[str, Any]:
        label = f"r{number}-w{workers}"
        server, startup = self.start_server(workers, label)
        result: dict[str, Any] = {"workers": workers, "startup_seconds": round(startup, 2)}
        try:
            self.warm_up(server, label)
            result["single_saturation"] = {
                str(c): self.wrk(server, f"{label}-single-c{c}", "single", "/v1/score", c,
                                 args.seconds)
                for c in args.connections
            }  # fmt: skip
            best = max(result["single_saturation"].values(), key=lambda r: r["requests_per_s"])
            result["single_best_rps"] = best["requests_per_s"]
            result["single_best_connections"] = best["connections"]
            result["single_rate"] = self.load_gen(
                server, f"{label}-single-rate", route="/v1/score",
                bodies=self.workload.single_file, connections=RATE_CONNECTIONS, rate=args.rate,
                count=int(args.rate * args.rate_seconds),
            )  # fmt: skip
            if workers == 1:
                result["batch_sequential"] = self.load_gen(
                    server, f"{label}-batch-seq", route="/v1/score/batch",
                    bodies=self.workload.batch_file, connections=1, rate=0.0,
                    count=BATCH_SEQUENTIAL,
                )  # fmt: skip
            result["batch_saturation"] = {
                str(c): self.wrk(server, f"{label}-batch-c{c}", "batch", "/v1/score/batch", c,
                                 args.seconds, rows_per_request=BATCH_ROWS)
                for c in args.batch_connections
                if workers == 1 or c > 1
            }  # fmt: skip
            if workers == 1:
                result["batch_rate"] = self.load_gen(
                    server, f"{label}-batch-rate", route="/v1/score/batch",
                    bodies=self.workload.batch_file, connections=BATCH_RATE_CONNECTIONS,
                    rate=args.batch_rate, count=int(args.batch_rate * args.rate_seconds),
                )  # fmt: skip
            result["server_peak_rss_mb"] = server.peak_rss_mb()
        finally:
            result["exit_code"] = server.stop()
            result["server_log_issues"] = log_issues(server.log_path.read_text(errors="replace"))
        # uvicorn shuts down cleanly on SIGTERM, then re-raises it: one worker exits with -15.
        if result["exit_code"] not in (0, -signal.SIGTERM):
            self.problem(
                f"{label}: the API server did not stop cleanly on SIGTERM (exit code "
                f"{result['exit_code']}; None: killed after {STOP_TIMEOUT:.0f} s)"
            )
        return result


# -- the open-loop load generator (its own process) --------------------------------------------


_DURATION = re.compile(rb"dur=([0-9.]+)")


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, float, bytes]:
    """Status, server-timing duration (ms, nan if absent) and body of one HTTP/1.1 response."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length: int | None = None
    server_ms = math.nan
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"server-timing" and (match := _DURATION.search(value)):
            server_ms = float(match.group(1))
        elif name == b"transfer-encoding":
            raise ValueError("a chunked response (the generator reads Content-Length bodies)")
    if length is None:
        raise ValueError("a response without Content-Length")
    return status, server_ms, await reader.readexactly(length)


async def _load_gen(args: argparse.Namespace) -> dict[str, Any]:
    bodies = [line for line in Path(args.bodies).read_bytes().splitlines() if line]
    requests = [
        b"POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s"
        % (args.route.encode(), HOST.encode(), args.port, len(body), body)
        for body in bodies
    ]
    count: int = args.count
    scheduled = np.full(count, math.nan)
    sent = np.full(count, math.nan)
    finished = np.full(count, math.nan)
    server_ms = np.full(count, math.nan)
    status = np.zeros(count, dtype=np.int64)
    errors: list[str] = []
    checked = False

    async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.wait_for(asyncio.open_connection(HOST, args.port), REQUEST_TIMEOUT)

    async def send(
        i: int, connection: tuple[asyncio.StreamReader, asyncio.StreamWriter]
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        nonlocal checked
        reader, writer = connection
        sent[i] = time.perf_counter()
        try:
            writer.write(requests[i % len(requests)])
            code, server_time, body = await asyncio.wait_for(
                _read_response(reader), REQUEST_TIMEOUT
            )
            status[i], server_ms[i] = code, server_time
            if code == 200 and not checked:  # the first answer is what the route promises
                parsed = orjson.loads(body)
                scores = parsed.get("scores", [parsed])
                if not all("fraud_probability" in s for s in scores):
                    raise ValueError("a 200 response without fraud_probability")
                checked = True
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError, KeyError) as exc:
            status[i] = 0
            if len(errors) < 10:
                errors.append(f"request {i}: {exc!r}")
            writer.close()
            connection = await connect()
        finished[i] = time.perf_counter()
        return connection

    connections = [await connect() for _ in range(args.connections)]
    queue: asyncio.Queue[int | None] = asyncio.Queue()

    async def worker(k: int) -> None:
        while (i := await queue.get()) is not None:
            connections[k] = await send(i, connections[k])

    if args.rate <= 0:  # sequential, closed loop: each request waits for the previous one
        for i in range(count):
            scheduled[i] = time.perf_counter()
            connections[0] = await send(i, connections[0])
    else:
        workers = [asyncio.create_task(worker(k)) for k in range(len(connections))]
        start = time.perf_counter() + 0.05
        for i in range(count):
            at = start + i / args.rate
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            scheduled[i] = at
            queue.put_nowait(i)
        for _ in workers:
            queue.put_nowait(None)
        await asyncio.gather(*workers)
    for _, writer in connections:
        writer.close()
    span = float(np.nanmax(sent) - np.nanmin(sent))
    return {
        "latency_ms": ((finished - scheduled) * 1000.0).round(3).tolist(),
        "service_ms": ((finished - sent) * 1000.0).round(3).tolist(),
        "queued_ms": ((sent - scheduled) * 1000.0).round(3).tolist(),
        "server_ms": [None if math.isnan(v) else v for v in server_ms.tolist()],
        "status": status.tolist(),
        "achieved_send_rate": round((count - 1) / span, 1) if span > 0 else None,
        "error_examples": errors,
    }


def load_gen_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_api load-gen",
        description="Open-loop HTTP/1.1 load generator: POST the bodies of a file (one a line, "
        "cycled) to 127.0.0.1 at a fixed rate over keep-alive connections, whatever the "
        "responses; latency from each request's scheduled send time. With --rate 0, --count "
        "sequential requests on one connection.",
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--route", required=True)
    parser.add_argument("--bodies", type=Path, required=True)
    parser.add_argument("--connections", type=int, default=RATE_CONNECTIONS)
    parser.add_argument("--rate", type=float, required=True, help="Requests/s; 0: sequential.")
    parser.add_argument("--count", type=int, required=True, help="Requests in all.")
    parser.add_argument("--out", type=Path, required=True, help="Per-request results (JSON).")
    args = parser.parse_args(argv)
    if args.count < 2 or args.connections < 1:
        sys.exit("--count must be at least 2 and --connections at least 1")
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    result = runner(_load_gen(args))
    args.out.write_text(json.dumps(result) + "\n")


# -- the report --------------------------------------------------------------------------------


def summarize(runs: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    def over_runs(*path: str) -> float | None:
        """The median over the runs of the figure at `path` (runs without it are skipped)."""
        values = []
        for run in runs:
            value: Any = run
            with contextlib.suppress(KeyError, TypeError):
                for key in path:
                    value = value[key]
                if value is not None:
                    values.append(float(value))
        return median(values) if values else None

    medians: dict[str, Any] = {
        "floor": {
            key: over_runs("floor", key, "median")
            for key in (
                "single_row_inplace_predict_us",
                "batch_1000_inplace_predict_ms",
                "single_row_contributions_us",
            )
        }
    }
    for w in args.workers:
        api = ("api", str(w))
        medians[f"workers_{w}"] = {
            "startup_seconds": over_runs(*api, "startup_seconds"),
            "single_best_rps": over_runs(*api, "single_best_rps"),
            "single_saturation": {
                str(c): {
                    "requests_per_s": over_runs(
                        *api, "single_saturation", str(c), "requests_per_s"
                    ),
                    "wrk_p50_ms": over_runs(*api, "single_saturation", str(c), "latency_ms", "p50"),
                    "wrk_p99_ms": over_runs(*api, "single_saturation", str(c), "latency_ms", "p99"),
                    "server_cpu_us_per_request": over_runs(
                        *api, "single_saturation", str(c), "server_cpu_us_per_request"
                    ),
                }
                for c in args.connections
            },
            "single_rate": {
                **{
                    key: over_runs(*api, "single_rate", "latency", key)
                    for key in ("p50_ms", "p90_ms", "p99_ms", "max_ms")
                },
                "achieved_send_rate": over_runs(*api, "single_rate", "achieved_send_rate"),
                "server_timing_p50_ms": over_runs(*api, "single_rate", "server_timing", "p50_ms"),
            },
            "batch_saturation": {
                str(c): {
                    "requests_per_s": over_runs(*api, "batch_saturation", str(c), "requests_per_s"),
                    "rows_per_s": over_runs(*api, "batch_saturation", str(c), "rows_per_s"),
                }
                for c in args.batch_connections
                if w == 1 or c > 1
            },
        }
    sequential = ("api", "1", "batch_sequential")
    medians["batch_sequential"] = {
        "server_timing_p50_ms": over_runs(*sequential, "server_timing", "p50_ms"),
        "server_timing_p99_ms": over_runs(*sequential, "server_timing", "p99_ms"),
        "client_p50_ms": over_runs(*sequential, "latency", "p50_ms"),
        "client_p99_ms": over_runs(*sequential, "latency", "p99_ms"),
    }
    medians["batch_rate"] = {
        **{
            key: over_runs("api", "1", "batch_rate", "latency", key)
            for key in ("p50_ms", "p90_ms", "p99_ms", "max_ms")
        },
        "achieved_send_rate": over_runs("api", "1", "batch_rate", "achieved_send_rate"),
    }
    return medians


def targets(medians: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    p99 = medians["workers_1"]["single_rate"]["p99_ms"]
    by_workers = {str(w): medians[f"workers_{w}"]["single_best_rps"] for w in args.workers}
    best_workers = max(by_workers, key=lambda w: by_workers[w] or 0.0)
    rps = by_workers[best_workers]
    batch = medians["batch_sequential"]["server_timing_p50_ms"]
    return {
        "single_p99_ms": {
            "target": f"<= {TARGET_P99_MS:.0f} ms at {args.rate:.0f} requests/s (1 worker)",
            "measured": p99, "met": p99 is not None and p99 <= TARGET_P99_MS,
        },
        "single_saturation_rps": {
            "target": f">= {TARGET_SINGLE_RPS:,.0f} requests/s (best worker count)",
            "measured": rps, "workers": int(best_workers), "by_workers": by_workers,
            "met": rps is not None and rps >= TARGET_SINGLE_RPS,
        },
        "batch_1000_server_ms": {
            "target": f"<= {TARGET_BATCH_SERVER_MS:.0f} ms median server-timing (1 worker)",
            "measured": batch, "met": batch is not None and batch <= TARGET_BATCH_SERVER_MS,
        },
    }  # fmt: skip


def print_table(report: dict[str, Any]) -> None:
    medians, goals = report["medians"], report["targets"]
    table = Table(title=f"API benchmark, median of {report['settings']['runs']} run(s)")
    table.add_column("figure")
    table.add_column("median", justify="right")
    table.add_column("target", justify="right")

    def verdict(goal: dict[str, Any]) -> str:
        return f"{goal['target']} {'met' if goal['met'] else 'NOT met'}"

    for w in report["settings"]["workers"]:
        entry = medians[f"workers_{w}"]
        goal = goals["single_saturation_rps"]
        table.add_row(
            f"single row, {w} worker(s): best requests/s",
            f"{entry['single_best_rps']:,.0f}",
            verdict(goal) if goal["workers"] == w else "",
        )
        for c, point in entry["single_saturation"].items():
            table.add_row(
                f"  {c} connections: req/s, wrk p50 / p99 (ms)",
                f"{point['requests_per_s']:,.0f}, {point['wrk_p50_ms']} / {point['wrk_p99_ms']}",
                f"{point['server_cpu_us_per_request']} µs server CPU/req",
            )
        rate = entry["single_rate"]
        table.add_row(
            f"  at {report['settings']['rate']:.0f} req/s: p50 / p90 / p99 / max (ms)",
            f"{rate['p50_ms']} / {rate['p90_ms']} / {rate['p99_ms']} / {rate['max_ms']}",
            verdict(goals["single_p99_ms"]) if w == 1 else "",
        )
        for c, point in entry["batch_saturation"].items():
            table.add_row(
                f"  1,000-row batches, {c} connection(s): req/s, rows/s",
                f"{point['requests_per_s']:,.1f}, {point['rows_per_s']:,.0f}",
                "",
            )
    seq = medians["batch_sequential"]
    table.add_row(
        "1,000-row batch, sequential: server p50 / p99 (ms)",
        f"{seq['server_timing_p50_ms']} / {seq['server_timing_p99_ms']}",
        verdict(goals["batch_1000_server_ms"]),
    )
    table.add_row("  client p50 / p99 (ms)", f"{seq['client_p50_ms']} / {seq['client_p99_ms']}", "")
    batch_rate = medians["batch_rate"]
    table.add_row(
        f"1,000-row batch at {report['settings']['batch_rate']:.0f} req/s: p50 / p99 (ms)",
        f"{batch_rate['p50_ms']} / {batch_rate['p99_ms']}",
        "",
    )
    fl = medians["floor"]
    table.add_row(
        "floor: booster, 1 row (µs) / 1,000 rows (ms)",
        f"{fl['single_row_inplace_predict_us']} / {fl['batch_1000_inplace_predict_ms']}",
        "one thread, no HTTP",
    )
    table.add_row("floor: contributions, 1 row (µs)", f"{fl['single_row_contributions_us']}", "")
    problems = report["problems"]
    table.add_row(
        "problems (non-2xx, errors, exits)",
        str(len(problems)),
        "see `problems` in the report" if problems else "",
    )
    Console(soft_wrap=True, width=max(Console().width, 110)).print(table)


NOTES = [
    "Every load generator is a separate process on the same machine as the server (2 cores "
    "here): load_generator_cpu_seconds is its CPU time over the measurement, taken from the "
    "server's cores. wrk runs one thread.",
    "single_saturation: wrk's latency is closed loop (each connection waits for its response "
    "before the next request), so its percentiles are those of a saturated server, not of a "
    "fixed load; single_rate is the open-loop figure.",
    "single_rate / batch_rate: requests are scheduled at fixed intervals from the start and "
    "handed to the first free connection of a fixed pool; latency = end of response - scheduled "
    "time, so a request waiting for a free connection (queued_before_send) counts that wait. "
    "service = end of response - actual send; server_timing = the server's own "
    "`server-timing: app;dur=` (request arrival to response start).",
    "batch_sequential: 50 requests one after the other on one keep-alive connection; the "
    "server-timing includes reading the ~0.8 MB body, parsing and validating it with pydantic, "
    "the booster call and encoding the response.",
    "floor: in the benchmark process with no server running, the same calls the API makes: "
    "inplace_predict(validate_features=False) on float32 rows and "
    "predict(DMatrix(row, nthread=1), pred_contribs=True) for reason codes, booster nthread=1 "
    "(FRAUD_MODEL_THREADS' default).",
    "With 2 workers, batch saturation skips 1 connection (one connection keeps at most one "
    "worker busy) and the sequential and fixed-rate batch measurements are not repeated.",
    "Each run starts a fresh server per worker count; startup_seconds runs from the process "
    "start until every worker has loaded the model. A 2 s warm-up (single rows and batches) "
    "precedes the measurements and is not recorded.",
    "The servers run without FRAUD_API_KEY, on a port of their own, with a metrics directory of "
    "their own.",
]


def _raise_on_sigterm(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(f"{signal.Signals(signum).name} received: stopping the servers")


@contextlib.contextmanager
def progress_bars() -> Iterator[Progress]:
    columns = (
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:.0f} s"),
        TimeElapsedColumn(),
    )  # fmt: skip
    with Progress(*columns, console=console) as progress:
        yield progress


def run_benchmark(args: argparse.Namespace, workdir: Path, logs: Path) -> dict[str, Any]:
    wrk_binary()  # fail before anything starts
    model = choose_model()
    console.print(
        f"model {model.name}@{model.alias} = version {model.version} ({model.why}); "
        f"store {os.environ['MLFLOW_TRACKING_URI']}"
    )
    workload = build_workload(workdir)
    booster = load_booster(model, workdir)
    scripts = {
        "single": write_wrk_script(workdir, "single", workload.single_file, "/v1/score"),
        "batch": write_wrk_script(workdir, "batch", workload.batch_file, "/v1/score/batch"),
    }
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    children = Children()
    runs: list[dict[str, Any]] = []
    with progress_bars() as progress:
        bench = Bench(children, workload, scripts, model, logs, progress)
        overall = progress.add_task("runs", total=args.runs)
        try:
            for number in range(1, args.runs + 1):
                run: dict[str, Any] = {"run": number, "floor": floor(booster, workload), "api": {}}
                fl = run["floor"]
                console.print(
                    f"run {number}: floor {fl['single_row_inplace_predict_us']['median']} µs per "
                    f"row, {fl['batch_1000_inplace_predict_ms']['median']} ms per 1,000 rows"
                )
                for w in args.workers:
                    result = bench.run_workers(number, w, args)
                    run["api"][str(w)] = result
                    sat = ", ".join(
                        f"c{c} {p['requests_per_s']:,.0f}"
                        for c, p in result["single_saturation"].items()
                    )
                    lat = result["single_rate"]["latency"]
                    console.print(
                        f"run {number}, {w} worker(s): started in {result['startup_seconds']} s; "
                        f"single req/s {sat}; at {args.rate:.0f} req/s p50 {lat['p50_ms']} p99 "
                        f"{lat['p99_ms']} ms"
                    )
                    if "batch_sequential" in result:
                        seq = result["batch_sequential"]
                        console.print(
                            f"run {number}, {w} worker(s): 1,000-row batch server "
                            f"p50 {seq['server_timing']['p50_ms']} ms, client p50 "
                            f"{seq['latency']['p50_ms']} ms"
                        )
                runs.append(run)
                progress.advance(overall)
        finally:
            children.stop_all()
    medians = summarize(runs, args)
    return {
        "problems": bench.problems,
        "benchmark": "fraud api over HTTP: single-row and 1,000-row batch scoring, and the "
        "booster alone",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "model": {
            "name": model.name, "alias": model.alias, "version": model.version,
            "threshold": model.threshold, "alias_chosen_because": model.why,
            "tracking_uri": os.environ["MLFLOW_TRACKING_URI"],
        },
        "machine": {
            "cpus": os.cpu_count(), "python": platform.python_version(),
            "fastapi": importlib.metadata.version("fastapi"),
            "uvicorn": importlib.metadata.version("uvicorn"),
            "xgboost": importlib.metadata.version("xgboost-cpu"),
            "wrk": wrk_version(),
            "load_average_at_start": load_at_start,
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "settings": {
            "runs": args.runs, "workers": args.workers, "connections": args.connections,
            "batch_connections": args.batch_connections, "saturation_seconds": args.seconds,
            "rate": args.rate, "rate_seconds": args.rate_seconds,
            "rate_connections": RATE_CONNECTIONS, "batch_rate": args.batch_rate,
            "batch_rate_connections": BATCH_RATE_CONNECTIONS,
            "batch_sequential_requests": BATCH_SEQUENTIAL, "single_rows": SINGLE_ROWS,
            "batch_rows": BATCH_ROWS, "batches": BATCHES,
            "batch_body_bytes": workload.batch_body_bytes,
            "request_timeout_seconds": REQUEST_TIMEOUT,
            "server_env": {
                k: v for k, v in sorted(os.environ.items())
                if k.startswith("FRAUD_") and k not in SERVER_ENV_DROPPED
            },
            "source": str(SOURCE.relative_to(ROOT)),
        },
        "notes": NOTES,
        "runs": runs,
        "medians": medians,
        "targets": targets(medians, args),
    }  # fmt: skip


def main() -> None:
    if sys.argv[1:2] == ["load-gen"]:
        load_gen_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3, help="Repetitions (median is kept).")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2], metavar="N",
        help="API worker counts to measure (1 always is: the targets use it). Default: 1 2.",
    )  # fmt: skip
    parser.add_argument(
        "--connections", type=int, nargs="+", default=list(CONNECTIONS), metavar="C",
        help="wrk connections for single-row saturation. Default: 16 64.",
    )  # fmt: skip
    parser.add_argument(
        "--batch-connections", type=int, nargs="+", default=list(BATCH_CONNECTIONS),
        metavar="C", help="wrk connections for 1,000-row batch saturation. Default: 1 2 4.",
    )  # fmt: skip
    parser.add_argument(
        "--seconds", type=int, default=SATURATION_SECONDS, help="Seconds per wrk point."
    )
    parser.add_argument("--rate", type=float, default=RATE, help="Single-row requests/s.")
    parser.add_argument("--batch-rate", type=float, default=BATCH_RATE, help="Batch requests/s.")
    parser.add_argument(
        "--rate-seconds", type=int, default=RATE_SECONDS, help="Seconds per fixed-rate test."
    )
    parser.add_argument(
        "--log-dir", type=Path, default=None,
        help="Keep the servers' logs and the load generators' output here (default: a "
        "temporary directory, removed).",
    )  # fmt: skip
    args = parser.parse_args()
    args.workers = sorted(set(args.workers) | {1})
    args.connections = sorted(set(args.connections))
    args.batch_connections = sorted(set(args.batch_connections))
    if args.runs < 1 or min(args.workers + args.connections + args.batch_connections) < 1:
        sys.exit("--runs, --workers and the connection counts must be at least 1")
    if args.seconds < 1 or args.rate_seconds < 1 or args.rate <= 0 or args.batch_rate <= 0:
        sys.exit("--seconds, --rate-seconds, --rate and --batch-rate must be positive")
    if not SOURCE.is_file():
        sys.exit(f"{SOURCE.relative_to(ROOT)} is missing: run `make demo` first to create it.")
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{ROOT / 'mlflow.db'}")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    # Ctrl-C stops everything even when started with SIGINT ignored (a background job).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        workdir = Path(tmp)
        logs = args.log_dir or workdir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        try:
            report = run_benchmark(args, workdir, logs)
        except BenchError as exc:
            sys.exit(f"bench-api failed: {exc}")
        except KeyboardInterrupt:
            sys.exit(
                "bench-api interrupted; the servers and load generators it started are stopped."
            )
    report["wall_seconds"] = round(time.perf_counter() - began, 1)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    if report["problems"]:
        console.print(f"[bold red]{len(report['problems'])} problem(s) during the benchmark:")
        for problem in report["problems"]:
            console.print(f"[red]  {problem}")
    console.print(f"wall time {report['wall_seconds']:.0f} s -> {OUT}")


if __name__ == "__main__":
    main()
