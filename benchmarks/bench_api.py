"""Benchmark the REST scoring API (`fraud api`) over HTTP: `make bench-api`.

Saturation with wrk, fixed rates (open loop) and sequential batches with vegeta, the booster alone
as the floor; writes reports/bench/api.json. What each figure means: benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import base64
import csv
import dataclasses
import importlib.metadata
import json
import re
import resource
import shutil
import signal
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
from rich.progress import Progress

from fraud.schema import FEATURE_COLUMNS, TIME_COLUMN
from tests import harness
from tests.harness import ROOT, ApiServer, HarnessError, console, percentiles

SOURCE = ROOT / "data/processed/test.parquet"
OUT = ROOT / "reports/bench/api.json"
WRK_SCRIPT = ROOT / "benchmarks/wrk_score.lua"

SINGLE_ROWS, BATCH_ROWS, BATCHES = 500, 1000, 5
RATE_CONNECTIONS, BATCH_RATE_CONNECTIONS, BATCH_SEQUENTIAL = 8, 4, 50
WARMUP_SECONDS = 2
TARGET_P99_MS, TARGET_SINGLE_RPS, TARGET_BATCH_SERVER_MS = 10.0, 1500.0, 20.0
# Upper bounds on every wait, so the benchmark always ends (and stops what it started).
READY_TIMEOUT = 180.0
REQUEST_TIMEOUT = 10.0  # per request, in wrk and vegeta
GRACE_SECONDS = 60.0  # a load generator still running this long after its duration is killed
# The benchmark picks host, port and workers itself, measures without an API key, and lets each
# server keep its metrics in a directory of its own.
SERVER_ENV_DROPPED = (
    "FRAUD_API_HOST", "FRAUD_API_PORT", "FRAUD_API_WORKERS", "FRAUD_API_KEY",
    "PROMETHEUS_MULTIPROC_DIR",
)  # fmt: skip
ROUTES = {"single": "/v1/score", "batch": "/v1/score/batch"}
ROWS = {"single": 1, "batch": BATCH_ROWS}
RELOADS = "fraud_model_reloads_total"
NO_TARGETS = "no targets to attack"  # vegeta's last result once -lazy targets run out
SERVER_TIMING = re.compile(rb"(?im)^server-timing:.*?dur=([0-9.]+)")


@dataclass(frozen=True)
class Workload:
    """Request bodies of real rows, per kind ("single", "batch"): a file of lines for wrk and one
    file per body for vegeta; and the same rows as arrays for the floor."""

    lines: dict[str, Path]
    files: dict[str, list[Path]]
    single_rows: npt.NDArray[np.float32]  # (SINGLE_ROWS, features)
    batches: list[npt.NDArray[np.float32]]  # BATCHES x (BATCH_ROWS, features)
    batch_body_bytes: int


def build_workload(workdir: Path) -> Workload:
    """500 single rows and 5 batches of 1,000 rows, spread evenly over the test split."""
    import pandas as pd

    frame = pd.read_parquet(SOURCE, columns=[TIME_COLUMN, *FEATURE_COLUMNS])
    needed = SINGLE_ROWS + BATCHES * BATCH_ROWS
    if len(frame) < needed:
        raise HarnessError(f"{SOURCE.relative_to(ROOT)} has {len(frame)} rows, {needed} needed")
    picked = frame.iloc[np.linspace(0, len(frame) - 1, needed).astype(np.int64)]
    records = picked.to_dict("records")
    features = picked[list(FEATURE_COLUMNS)].to_numpy(dtype=np.float32)

    def row(prefix: str, i: int, index: int) -> dict[str, Any]:
        values = {name: float(records[index][name]) for name in (TIME_COLUMN, *FEATURE_COLUMNS)}
        return {"transaction_id": f"{prefix}-{i:06d}", **values}

    starts = [SINGLE_ROWS + b * BATCH_ROWS for b in range(BATCHES)]
    bodies = {
        "single": [orjson.dumps(row("bench", i, i)) for i in range(SINGLE_ROWS)],
        "batch": [
            orjson.dumps(
                {"transactions": [row(f"bench-b{b}", i, s + i) for i in range(BATCH_ROWS)]}
            )
            for b, s in enumerate(starts)
        ],
    }
    lines, files = {}, {}
    for kind, kind_bodies in bodies.items():
        lines[kind] = workdir / f"{kind}.jsonl"
        lines[kind].write_bytes(b"\n".join(kind_bodies) + b"\n")
        files[kind] = [workdir / f"{kind}-{i}.json" for i in range(len(kind_bodies))]
        for path, body in zip(files[kind], kind_bodies, strict=True):
            path.write_bytes(body)
    batches = [features[s : s + BATCH_ROWS] for s in starts]
    size = int(statistics.mean(map(len, bodies["batch"])))
    return Workload(lines, files, features[:SINGLE_ROWS], batches, size)


def floor(booster: Any, workload: Workload) -> dict[str, Any]:
    """The booster calls the API makes, timed alone on the same rows (one thread)."""
    import xgboost as xgb

    def timed(
        calls: int, scale: float, digits: int, call: Callable[[int], object]
    ) -> dict[str, Any]:
        took = []
        for i in range(calls):
            began = time.perf_counter()
            call(i)
            took.append((time.perf_counter() - began) * scale)
        p99 = round(float(np.percentile(took, 99)), digits)
        return {"calls": calls, "median": round(statistics.median(took), digits), "p99": p99}

    rows = [workload.single_rows[i : i + 1] for i in range(len(workload.single_rows))]

    def predict(data: npt.NDArray[np.float32]) -> object:
        return booster.inplace_predict(data, validate_features=False)

    for one in rows[:20]:  # warm-up
        predict(one)
    single = timed(500, 1e6, 1, lambda i: predict(rows[i % len(rows)]))
    predict(workload.batches[0])
    batch = timed(30, 1e3, 3, lambda i: predict(workload.batches[i % BATCHES]))

    def contributions(i: int) -> object:
        matrix = xgb.DMatrix(rows[i % len(rows)], feature_names=list(FEATURE_COLUMNS), nthread=1)
        return booster.predict(matrix, pred_contribs=True, validate_features=False)

    return {
        "single_row_inplace_predict_us": single,
        "batch_1000_inplace_predict_ms": batch,
        "single_row_contributions_us": timed(200, 1e6, 1, contributions),
    }


def tool_versions(vegeta: str) -> dict[str, str]:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise HarnessError("wrk is not installed: `make system-deps` installs the Debian package")
    if not Path(vegeta).is_file():
        raise HarnessError(f"no vegeta at {vegeta}: `make bench-api` builds it into .tools/")
    done = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)
    go = shutil.which("go")  # the module's version, which a `go install` binary does not print
    built = (
        subprocess.run([go, "version", "-m", vegeta], capture_output=True, text=True)
        if go
        else None
    )
    module = re.search(r"^\s*mod\s+(\S+)\s+(\S+)", built.stdout if built else "", re.MULTILINE)
    return {
        "wrk": (done.stdout or done.stderr).splitlines()[0].strip(),
        "vegeta": " ".join(module.groups()) if module else Path(vegeta).parent.name,
    }


def children_cpu_seconds() -> float:
    """utime + stime of the benchmark's reaped children (the load generators, once done)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Bench:
    args: argparse.Namespace
    workload: Workload
    model: harness.ModelChoice
    workdir: Path
    logs: Path
    progress: Progress
    problems: list[str] = field(default_factory=list)
    server: ApiServer | None = None  # the one being measured
    label: str = ""  # run and worker count, e.g. r1-w2

    def problem(self, what: str) -> None:
        self.problems.append(what)
        console.print(f"[bold red]PROBLEM: {what}")

    def start_server(self, workers: int) -> float:
        """Start the server and wait until every worker has loaded the model (/ready answers from
        whichever worker takes the connection, so until fraud_model_reloads_total{result="success"}
        counts them all); the seconds since the start."""
        env = {k: v for k, v in self.model.env().items() if k not in SERVER_ENV_DROPPED}
        log = self.logs / f"{self.label}-api.log"
        self.server = server = ApiServer(env, log, ["--workers", str(workers)]).start()
        task = self.progress.add_task(f"{self.label}: start the API", total=None)

        def loaded() -> bool:
            reloads = 'result="success"'
            return server.poll_ready() and server.metric(RELOADS, reloads) >= workers

        try:
            harness.wait_until(loaded, READY_TIMEOUT, f"the model in {workers} worker(s)")
        except HarnessError as exc:
            raise HarnessError(f"{exc}; the end of the API's log:\n{server.log_tail()}") from None
        finally:
            self.progress.remove_task(task)
        startup = time.perf_counter() - server.started_at
        version = str(json.loads(server.get("/ready")[1]).get("model_version"))
        if version != self.model.version:
            self.problem(
                f"{self.label}: the API serves version {version}, not {self.model.version}"
            )
        return startup

    def measure(self, label: str, command: list[str], seconds: float, log: Path) -> dict[str, Any]:
        """Run one load generator against the server; the wall time and both sides' CPU."""
        assert self.server is not None
        server, task = self.server, self.progress.add_task(label, total=seconds)
        server.check_alive()
        cpu0, load_cpu0 = harness.group_cpu_seconds(server.pid), children_cpu_seconds()
        began = time.perf_counter()
        try:
            code = harness.run_bounded(
                command, log, seconds + GRACE_SECONDS,
                tick=lambda t: self.progress.update(task, completed=min(t, seconds)),
            )  # fmt: skip
        finally:
            self.progress.remove_task(task)
        wall = time.perf_counter() - began
        cpu = harness.group_cpu_seconds(server.pid)
        server.check_alive()
        if code != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            raise HarnessError(f"{label}: the load generator exited with code {code}:\n{tail}")
        return {
            "wall_seconds": round(wall, 3),
            "server_cpu_seconds": round(sum(v - cpu0.get(pid, 0.0) for pid, v in cpu.items()), 3),
            "load_generator_cpu_seconds": round(children_cpu_seconds() - load_cpu0, 3),
        }

    def wrk(self, name: str, kind: str, connections: int, seconds: int) -> dict[str, Any]:
        """Closed loop: `connections` keep-alive connections, each sending its next request when
        the previous one is answered, for `seconds`."""
        assert self.server is not None
        label, log = f"{self.label}-{name}", self.logs / f"{self.label}-{name}.wrk.txt"
        command = [
            "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
            "--timeout", f"{REQUEST_TIMEOUT:.0f}s", "-s", str(WRK_SCRIPT),
            self.server.url + ROUTES[kind], "--", str(self.workload.lines[kind]),
        ]  # fmt: skip
        usage = self.measure(f"{label}: wrk, {connections} connection(s)", command, seconds, log)
        output = log.read_text(errors="replace")
        found = [line for line in output.splitlines() if line.startswith("BENCH_JSON ")]
        if not found or not (summary := json.loads(found[-1].split(" ", 1)[1]))["requests"]:
            raise HarnessError(f"{label}: wrk completed no request; its output:\n{output[-2000:]}")
        seconds_run, requests = summary["duration_us"] / 1e6, summary["requests"]
        errors = {k: v for k, v in summary["errors"].items() if k != "status"}
        if summary["non2xx"] or sum(errors.values()):
            self.problem(
                f"{label}: wrk saw {summary['non2xx']} non-2xx response(s) (first status "
                f"{summary['first_non2xx_status']}) and socket errors {errors} in {requests}"
            )
        return {
            "connections": connections,
            "seconds": round(seconds_run, 3),
            "requests": requests,
            "requests_per_s": round(requests / seconds_run, 1),
            "rows_per_s": round(requests * ROWS[kind] / seconds_run, 1),
            "latency_ms": {k: round(v / 1000.0, 3) for k, v in summary["latency_us"].items()},
            "non2xx": summary["non2xx"],
            "first_non2xx_status": summary["first_non2xx_status"] or None,
            "socket_errors": errors,
            "server_cpu_us_per_request": round(usage["server_cpu_seconds"] / requests * 1e6, 1),
            **usage,
        }

    def vegeta(
        self, name: str, kind: str, connections: int, rate: float, count: int
    ) -> dict[str, Any]:
        """Open loop: `count` requests at `rate`/s whatever the answers, on at most `connections`
        keep-alive connections; latency from each request's scheduled send time. With rate 0,
        `count` requests one after the other on one connection."""
        assert self.server is not None
        label, bodies = f"{self.label}-{name}", self.workload.files[kind]
        targets, results = self.workdir / f"{label}.targets", self.logs / f"{label}.vegeta"
        target = f"POST {self.server.url}{ROUTES[kind]}\nContent-Type: application/json\n@%s\n\n"
        targets.write_text("".join(target % bodies[i % len(bodies)] for i in range(count)))
        pace = [f"-rate={round(rate * 1000)}/1000s"] if rate else ["-rate=0", "-max-workers=1"]
        command = [
            self.args.vegeta, "attack", "-lazy", f"-targets={targets}", f"-output={results}",
            f"-connections={connections}", f"-max-connections={connections}",
            f"-timeout={REQUEST_TIMEOUT:.0f}s", "-max-body=4096", *pace,
        ]  # fmt: skip
        seconds = count / rate if rate else count * 0.2
        what = f"{rate:.0f} req/s for {seconds:.0f} s" if rate else f"{count} sequential"
        log = self.logs / f"{label}.vegeta.log"
        usage = self.measure(f"{label}: {what}", command, seconds, log)
        encode = [self.args.vegeta, "encode", "-to", "csv", str(results)]
        encoded = subprocess.run(encode, capture_output=True, text=True, check=True, timeout=120)
        # timestamp (ns), code, latency (ns), bytes out, bytes in, error, body, attack, seq, ...
        rows = [r for r in csv.reader(encoded.stdout.splitlines()) if r[5] != NO_TARGETS]
        if not rows:
            raise HarnessError(f"{label}: vegeta sent nothing; see {log}")
        columns = (np.array([int(r[i]) for r in rows], dtype=np.int64) for i in (0, 1, 2, 8))
        started_ns, code, took_ns, seq = columns
        started = (started_ns - started_ns[seq.argmin()]) / 1e6  # ms after the first request
        # vegeta's schedule is a fixed grid (request n at n/rate s), placed at the one request
        # that left earliest against it: every other request is then as late as its send_delay.
        scheduled = seq * 1000.0 / rate if rate else started
        scheduled = scheduled + (started - scheduled).min()
        took = took_ns / 1e6
        scored = np.array([b'"fraud_probability"' in base64.b64decode(r[6]) for r in rows])
        timing = [SERVER_TIMING.search(base64.b64decode(r[11])) for r in rows]
        server_ms = np.array([float(m.group(1)) if m else np.nan for m in timing])
        ok = (code == 200) & scored
        non2xx = int(((code != 0) & ((code < 200) | (code > 299))).sum())
        errors = len(rows) - int(ok.sum()) - non2xx
        examples = sorted({r[5] for r in rows if r[5]})[:10]
        if ((code == 200) & ~scored).any():
            examples.append("a 200 response without fraud_probability")
        if non2xx or errors or len(rows) != count:
            self.problem(
                f"{label}: vegeta sent {len(rows)} of {count} requests; {non2xx} non-2xx "
                f"response(s) and {errors} error(s): {examples[:3]}"
            )
        span = float(started.max() - started.min()) / 1000.0
        return {
            "requests": len(rows),
            "connections": connections,
            "offered_rate": rate or None,
            "achieved_send_rate": round((len(rows) - 1) / span, 1) if span > 0 else None,
            "ok": int(ok.sum()),
            "non2xx": non2xx,
            "errors": errors,
            "error_examples": examples,
            "latency": percentiles((started + took - scheduled)[ok]),
            "vegeta_latency": percentiles(took[ok]),
            "server_timing": percentiles(server_ms[ok & ~np.isnan(server_ms)]),
            "send_delay": percentiles(started - scheduled),
            "server_cpu_us_per_request": round(usage["server_cpu_seconds"] / len(rows) * 1e6, 1),
            **usage,
        }

    def run_workers(self, number: int, workers: int) -> dict[str, Any]:
        """One server with `workers` workers through every measurement of a run."""
        args, self.label = self.args, f"r{number}-w{workers}"
        result: dict[str, Any] = {"workers": workers}
        try:
            result["startup_seconds"] = round(self.start_server(workers), 2)
            # Not recorded: every worker's first requests (imports, allocations), both routes.
            self.wrk("warmup", "single", 16, WARMUP_SECONDS)
            self.wrk("warmup-batch", "batch", 2, WARMUP_SECONDS)
            result["single_saturation"] = {
                str(c): self.wrk(f"single-c{c}", "single", c, args.saturation_seconds)
                for c in args.connections
            }
            best = max(result["single_saturation"].values(), key=lambda r: r["requests_per_s"])
            result["single_best_rps"] = best["requests_per_s"]
            result["single_best_connections"] = best["connections"]
            count = int(args.rate * args.rate_seconds)
            result["single_rate"] = self.vegeta(
                "single-rate", "single", RATE_CONNECTIONS, args.rate, count
            )
            if workers == 1:
                sequential = self.vegeta("batch-seq", "batch", 1, 0.0, BATCH_SEQUENTIAL)
                result["batch_sequential"] = sequential
            result["batch_saturation"] = {
                str(c): self.wrk(f"batch-c{c}", "batch", c, args.saturation_seconds)
                for c in args.batch_connections
                if workers == 1 or c > 1  # one connection keeps at most one worker busy
            }
            if workers == 1:
                count = int(args.batch_rate * args.rate_seconds)
                result["batch_rate"] = self.vegeta(
                    "batch-rate", "batch", BATCH_RATE_CONNECTIONS, args.batch_rate, count
                )
            pids = harness.group_pids(self.server.pid) if self.server else []
            result["server_peak_rss_mb"] = [harness.peak_rss_mb(pid) for pid in pids]
        finally:
            if self.server is not None:
                result["exit_code"] = self.server.terminate()
                result["server_log_issues"] = harness.log_issues(self.server.log())
                self.server = None
        # uvicorn shuts down cleanly on SIGTERM, then re-raises it: one worker exits with -15.
        if result["exit_code"] not in (0, -signal.SIGTERM):
            self.problem(f"{self.label}: the API server did not stop cleanly on SIGTERM: {result}")
        return result


def summarize(runs: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    def at(*path: str) -> float | None:
        return harness.median_at(runs, *path)

    def rates(*path: str) -> dict[str, float | None]:
        figures = {k: at(*path, "latency", k) for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms")}
        return {**figures, "achieved_send_rate": at(*path, "achieved_send_rate")}

    floors = ("single_row_inplace_predict_us", "batch_1000_inplace_predict_ms")
    medians: dict[str, Any] = {
        "floor": {k: at("floor", k, "median") for k in (*floors, "single_row_contributions_us")}
    }
    for w in args.workers:
        api = ("api", str(w))
        single = {
            str(c): {
                "requests_per_s": at(*api, "single_saturation", str(c), "requests_per_s"),
                "wrk_p50_ms": at(*api, "single_saturation", str(c), "latency_ms", "p50"),
                "wrk_p99_ms": at(*api, "single_saturation", str(c), "latency_ms", "p99"),
                "server_cpu_us_per_request": at(
                    *api, "single_saturation", str(c), "server_cpu_us_per_request"
                ),
            }
            for c in args.connections
        }
        batch = {
            str(c): {
                key: at(*api, "batch_saturation", str(c), key)
                for key in ("requests_per_s", "rows_per_s")
            }
            for c in args.batch_connections
            if w == 1 or c > 1
        }
        medians[f"workers_{w}"] = {
            "startup_seconds": at(*api, "startup_seconds"),
            "single_best_rps": at(*api, "single_best_rps"),
            "single_saturation": single,
            "single_rate": {
                **rates(*api, "single_rate"),
                "server_timing_p50_ms": at(*api, "single_rate", "server_timing", "p50_ms"),
            },
            "batch_saturation": batch,
        }
    sequential = ("api", "1", "batch_sequential")
    medians["batch_sequential"] = {
        "server_timing_p50_ms": at(*sequential, "server_timing", "p50_ms"),
        "server_timing_p99_ms": at(*sequential, "server_timing", "p99_ms"),
        "client_p50_ms": at(*sequential, "latency", "p50_ms"),
        "client_p99_ms": at(*sequential, "latency", "p99_ms"),
    }
    medians["batch_rate"] = rates("api", "1", "batch_rate")
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


def measure(args: argparse.Namespace, workdir: Path, logs: Path) -> dict[str, Any]:
    import xgboost as xgb

    tools = tool_versions(args.vegeta)  # fail before anything starts
    model = harness.ModelChoice.choose()
    workload = build_workload(workdir)
    booster = xgb.Booster()
    booster.load_model(str(model.download(workdir / "model")))
    booster.set_param({"nthread": 1})
    runs: list[dict[str, Any]] = []
    with harness.progress_bars(unit="s") as progress:
        bench = Bench(args, workload, model, workdir, logs, progress)
        overall = progress.add_task("runs", total=args.runs)
        for number in range(1, args.runs + 1):
            run: dict[str, Any] = {"run": number, "floor": floor(booster, workload), "api": {}}
            for w in args.workers:
                run["api"][str(w)] = result = bench.run_workers(number, w)
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
            runs.append(run)
            progress.advance(overall)
    medians = summarize(runs, args)
    settings = {k: v for k, v in vars(args).items() if k not in ("vegeta", "log_dir")}
    settings |= {
        "rate_connections": RATE_CONNECTIONS, "batch_rate_connections": BATCH_RATE_CONNECTIONS,
        "batch_sequential_requests": BATCH_SEQUENTIAL, "single_rows": SINGLE_ROWS,
        "batch_rows": BATCH_ROWS, "batches": BATCHES, "batch_body_bytes": workload.batch_body_bytes,
        "request_timeout_seconds": REQUEST_TIMEOUT, "source": str(SOURCE.relative_to(ROOT)),
        "server_env": {
            k: v for k, v in sorted(model.env().items())
            if k.startswith("FRAUD_") and k not in SERVER_ENV_DROPPED
        },
    }  # fmt: skip
    versions = {name: importlib.metadata.version(name) for name in ("fastapi", "uvicorn")}
    return {
        "problems": bench.problems,
        "benchmark": "fraud api over HTTP: single-row and 1,000-row batch scoring, and the "
        "booster alone",
        "model": dataclasses.asdict(model),
        "machine": {**versions, "xgboost": importlib.metadata.version("xgboost-cpu"), **tools},
        "settings": settings,
        "notes": "benchmarks/README.md",
        "runs": runs,
        "medians": medians,
        "targets": targets(medians, args),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add = parser.add_argument
    add("--runs", type=int, default=3, help="Repetitions (median is kept).")
    add(
        "--workers",
        type=int,
        nargs="+",
        default=[1, 2],
        metavar="N",
        help="API worker counts to measure (1 always is: the targets use it). Default: 1 2.",
    )
    add(
        "--connections",
        type=int,
        nargs="+",
        default=[16, 64],
        metavar="C",
        help="wrk connections for single-row saturation. Default: 16 64.",
    )
    add(
        "--batch-connections",
        type=int,
        nargs="+",
        default=[1, 2, 4],
        metavar="C",
        help="wrk connections for 1,000-row batch saturation. Default: 1 2 4.",
    )
    add("--seconds", dest="saturation_seconds", type=int, default=10, help="Seconds per wrk point.")
    add("--rate", type=float, default=200.0, help="Single-row requests/s.")
    add("--batch-rate", type=float, default=10.0, help="Batch requests/s.")
    add("--rate-seconds", type=int, default=20, help="Seconds per fixed-rate test.")
    add("--vegeta", default=shutil.which("vegeta") or "vegeta", help="The vegeta binary.")
    add("--log-dir", type=Path, default=None, help="Keep the servers' logs and the load "
        "generators' output here (default: a temporary directory, removed).")  # fmt: skip
    args = parser.parse_args()
    args.workers = sorted(set(args.workers) | {1})
    args.connections = sorted(set(args.connections))
    args.batch_connections = sorted(set(args.batch_connections))
    if args.runs < 1 or min(args.workers + args.connections + args.batch_connections) < 1:
        parser.error("--runs, --workers and the connection counts must be at least 1")
    if min(args.saturation_seconds, args.rate_seconds, args.rate, args.batch_rate) <= 0:
        parser.error("--seconds, --rate-seconds, --rate and --batch-rate must be positive")
    harness.run_benchmark(OUT, SOURCE, args.log_dir, lambda tmp, logs: measure(args, tmp, logs))


if __name__ == "__main__":
    main()
