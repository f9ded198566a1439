"""Real `fero serve` processes for tests: started on a free loopback port, waited on
until they say they serve, killed (SIGKILL or SIGTERM) and restarted on the same data.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

_READY = re.compile(r"fero: serving on (\S+) \(node (\S+),")


class ServeProcess:
    """One `fero serve` process. `start()` blocks until it serves or `timeout_s` passes."""

    def __init__(self, data_dir: Path | None, *, port: int = 0, node_id: str | None = None,
                 extra_args: list[str] | None = None, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = port
        self.node_id = node_id
        self.extra_args = extra_args or []
        self.env = env
        self.proc: subprocess.Popen[str] | None = None
        self.address = ""
        self.stderr_lines: list[str] = []

    def start(self, timeout_s: float = 30.0) -> "ServeProcess":
        args = [sys.executable, "-m", "fero.cli.main", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        args += ["--data-dir", str(self.data_dir)] if self.data_dir is not None else ["--memory"]
        if self.node_id:
            args += ["--node-id", self.node_id]
        args += self.extra_args
        env = {**os.environ, **(self.env or {})}
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        deadline = time.monotonic() + timeout_s
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            m = _READY.search(line)
            if m:
                self.address = m.group(1)
                self.node_id = m.group(2)
                # Keep the port: a restart on the same data comes back at the same address.
                self.port = int(self.address.rsplit(":", 1)[1])
                return self
        self.kill()
        raise RuntimeError(f"fero serve did not start: {''.join(self.stderr_lines[-20:])}")

    def _drain_stderr(self) -> None:
        proc = self.proc
        assert proc is not None and proc.stderr is not None
        for line in proc.stderr:
            self.stderr_lines.append(line)

    def kill(self, sig: int = signal.SIGKILL, timeout_s: float = 15.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout_s)

    def stop(self) -> int | None:
        return self.kill(signal.SIGTERM)

    def __enter__(self) -> "ServeProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()
