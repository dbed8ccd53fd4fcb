"""Process helpers shared by the bench scripts: servers started as subprocesses on 127.0.0.1 and waited for.

Not a script. The bench scripts import it as ``procs``: run as ``python bench/<name>.py`` the bench directory is
``sys.path[0]``; loaded by file path (``tests/test_crash_wecom.py`` loads ``bench/crash_wecom.py`` with
``importlib.util.spec_from_file_location``) it is not, so each script puts its own directory on ``sys.path`` before
the import.

* ``free_port()``: a free TCP port on ``HOST``;
* ``Proc``: a started subprocess with its port and log file (base URL, log tail, SIGKILL, graceful stop, peak RSS);
* ``spawn()``: start ``python ARGS`` from the repository root, stdout and stderr appended to a log file;
* ``wait_healthy()`` / ``wait_exit()``: wait until a server answers 200, or until a process has exited with 0;
* ``cli()``: run ``python -m bot.cli ARGS --config CONFIG`` to completion;
* ``vm_hwm_mb()``: the peak resident set size (VmHWM) of a process, from ``/proc``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on ``HOST`` that is free now (the OS picks it; another process may take it before it is used)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def vm_hwm_mb(pid: int | str = "self") -> float | None:
    """Peak resident set size (``VmHWM`` of ``/proc/PID/status``) in MB; None where there is no such file."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


@dataclass
class Proc:
    """A subprocess started by ``spawn()``: ``port`` is where it listens (0: nowhere), ``log`` its output."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    stop_signal: int = signal.SIGINT  # what ``stop()`` sends first

    @property
    def base(self) -> str:
        """The server's base URL, ``http://HOST:PORT``."""
        return f"http://{HOST}:{self.port}"

    def tail(self, n: int = 30) -> str:
        """The last ``n`` lines of the log ("" if it cannot be read)."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL, no chance to clean up."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        """Graceful stop: ``stop_signal``, then SIGKILL if the process has not exited within 10 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(self.stop_signal)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def peak_rss_mb(self) -> float | None:
        """The process's peak RSS (VmHWM) in MB; None once it has exited or off Linux."""
        return vm_hwm_mb(self.proc.pid)


def spawn(
    name: str,
    args: list[str],
    port: int,
    log: Path,
    *,
    env: dict[str, str] | None = None,
    stop_signal: int = signal.SIGINT,
) -> Proc:
    """Start ``python ARGS`` (this interpreter) in the repository root, stdout and stderr appended to ``log``.

    ``env`` is added to this process's environment; ``stop_signal`` is what ``Proc.stop()`` sends first.
    """
    out = log.open("ab")
    proc = subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    out.close()
    return Proc(name, proc, port, log, stop_signal)


def cli(config: Path, *args: str, timeout: float = 120.0) -> str:
    """Run ``python -m bot.cli ARGS --config CONFIG`` to completion; its output, or RuntimeError."""
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", *args, "--config", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bot.cli {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout.strip()


async def wait_healthy(proc: Proc, limit_s: float = 60.0, path: str = "/healthz", poll_s: float = 0.05) -> None:
    """Poll ``GET path`` every ``poll_s`` until it answers 200; RuntimeError (with the log tail) if the process
    exits or ``limit_s`` passes first."""
    deadline = time.monotonic() + limit_s
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as s:
        while time.monotonic() < deadline:
            if proc.proc.poll() is not None:
                raise RuntimeError(f"{proc.name} exited with {proc.proc.returncode}:\n{proc.tail()}")
            with contextlib.suppress(TimeoutError, aiohttp.ClientError):
                async with s.get(f"{proc.base}{path}") as r:
                    if r.status == 200:
                        return
            await asyncio.sleep(poll_s)
    raise RuntimeError(f"{proc.name} not healthy after {limit_s:.0f}s:\n{proc.tail()}")


def wait_exit(proc: Proc, limit_s: float) -> None:
    """Wait for the process to exit with status 0; RuntimeError (with the log tail) otherwise, stopping it first
    if it is still running after ``limit_s``."""
    try:
        proc.proc.wait(timeout=limit_s)
    except subprocess.TimeoutExpired:
        proc.stop()
        raise RuntimeError(f"{proc.name} did not finish within {limit_s:.0f}s:\n{proc.tail()}") from None
    if proc.proc.returncode != 0:
        raise RuntimeError(f"{proc.name} exited with {proc.proc.returncode}:\n{proc.tail()}")
