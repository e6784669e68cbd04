"""supervisord, the process manager under `fraud up`: its configuration and a small client.

supervisord daemonizes, restarts a part that dies, keeps each part's log and knows each part's
state; this module only writes its configuration file and talks to it over its UNIX socket
(XML-RPC, as `supervisorctl` does).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class SupervisorError(RuntimeError):
    """supervisord did not start, answer or stop as asked; the message says what to do."""


@dataclass(frozen=True)
class Program:
    """One supervised process: a name, its command (run from `directory`), what it adds to the
    environment, and how long it may take to stop before SIGKILL."""

    name: str
    command: Sequence[str]
    directory: Path
    environment: Mapping[str, str] = field(default_factory=dict)
    stop_seconds: int = 20


@dataclass(frozen=True)
class ProcessState:
    name: str
    state: str  # supervisord's: RUNNING, STARTING, BACKOFF, STOPPED, EXITED, FATAL, ...
    pid: int | None
    description: str


def _quote(value: str) -> str:
    """A value in supervisord's INI file: `%` starts an expansion there, so it is doubled."""
    return value.replace("%", "%%")


def _command_line(command: Sequence[str]) -> str:
    import shlex

    return _quote(shlex.join(command))


def _environment(environment: Mapping[str, str]) -> str:
    return ",".join(
        f'{key}="{_quote(value).replace(chr(34), chr(92) + chr(34))}"'
        for key, value in environment.items()
    )


@dataclass(frozen=True)
class Supervisor:
    """supervisord with its files in `run_dir` and the parts' logs in `log_dir`."""

    run_dir: Path
    log_dir: Path

    @property
    def config_file(self) -> Path:
        return self.run_dir / "supervisord.conf"

    @property
    def socket(self) -> Path:
        return self.run_dir / "supervisor.sock"

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "supervisord.pid"

    def log_file(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def render(self, programs: Sequence[Program]) -> str:
        """The configuration file: supervisord itself, its socket, then one section per part."""
        lines = [
            "; Written by `fraud up`; it is rewritten at every start, edit the settings instead.",
            "[supervisord]",
            f"logfile={_quote(str(self.log_file('supervisord')))}",
            f"pidfile={_quote(str(self.pid_file))}",
            f"directory={_quote(str(self.run_dir))}",
            "logfile_maxbytes=5MB",
            "logfile_backups=2",
            "",
            "[unix_http_server]",
            f"file={_quote(str(self.socket))}",
            "chmod=0700",
            "",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
            "",
            "[supervisorctl]",
            f"serverurl=unix://{_quote(str(self.socket))}",
        ]
        for program in programs:
            lines += [
                "",
                f"[program:{program.name}]",
                f"command={_command_line(program.command)}",
                f"directory={_quote(str(program.directory))}",
                "autostart=true",
                # Restarted whenever it ends, however it ended; a part that cannot start at
                # all ends FATAL after a few quick tries, which `fraud status` shows.
                "autorestart=true",
                "startsecs=3",
                "startretries=5",
                "stopsignal=TERM",
                f"stopwaitsecs={program.stop_seconds}",
                "stopasgroup=true",
                "killasgroup=true",
                "redirect_stderr=true",
                f"stdout_logfile={_quote(str(self.log_file(program.name)))}",
                "stdout_logfile_maxbytes=10MB",
                "stdout_logfile_backups=2",
            ]
            if program.environment:
                lines.append(f"environment={_environment(program.environment)}")
        return "\n".join(lines) + "\n"

    def _rpc(self) -> Any:
        from supervisor.xmlrpc import SupervisorTransport

        transport = SupervisorTransport(None, None, f"unix://{self.socket}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)

    def running(self) -> bool:
        """Whether a supervisord answers on the socket."""
        if not self.socket.exists():
            return False
        try:
            return str(self._rpc().supervisor.getState()["statename"]) == "RUNNING"
        except (OSError, xmlrpc.client.Error):
            return False

    def start(self, programs: Sequence[Program], timeout: float = 30.0) -> None:
        """Write the configuration and start supervisord, which daemonizes and starts every
        program; returns once it answers on its socket."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(self.render(programs))
        result = subprocess.run(
            [sys.executable, "-m", "supervisor.supervisord", "-c", str(self.config_file)],
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise SupervisorError(
                f"supervisord did not start ({(result.stderr or result.stdout).strip()}); "
                f"its log is {self.log_file('supervisord')}."
            )
        deadline = time.monotonic() + timeout
        while not self.running():
            if time.monotonic() > deadline:
                raise SupervisorError(
                    f"supervisord started but did not answer on {self.socket} within "
                    f"{timeout:.0f} s; see {self.log_file('supervisord')}."
                )
            time.sleep(0.1)

    def start_all(self) -> None:
        """Start every program that is not running (after `fraud down` of one, or a FATAL)."""
        self._rpc().supervisor.startAllProcesses(False)

    def processes(self) -> list[ProcessState]:
        return [
            ProcessState(
                name=str(info["name"]),
                state=str(info["statename"]),
                pid=int(info["pid"]) or None,
                description=str(info["description"]),
            )
            for info in self._rpc().supervisor.getAllProcessInfo()
        ]

    def daemon_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def shutdown(self, timeout: float = 120.0) -> int | None:
        """Stop every program (each within its stop time), then supervisord; its pid, or None
        when it was not running."""
        pid = self.daemon_pid()
        if not self.running():
            return None
        self._rpc().supervisor.shutdown()
        deadline = time.monotonic() + timeout
        while pid is not None and _alive(pid):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                raise SupervisorError(
                    f"supervisord (pid {pid}) had not stopped its programs within {timeout:.0f} s "
                    f"and was killed; see {self.log_file('supervisord')}."
                )
            time.sleep(0.2)
        return pid


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
