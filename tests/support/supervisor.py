"""Processes a test kills and starts again, on the same port, as a supervisor (systemd,
Kubernetes) would after a crash."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.processes import wait_until


class Supervised:
    """`python -m <module>` with `env`; a web service gets `port` and is ready when /health
    answers. Its log (stderr) is appended to `log`."""

    def __init__(
        self, name: str, module: str, env: dict[str, str], log: Path, port: int | None = None
    ) -> None:
        self.name = name
        self.module = module
        self.env = {**os.environ, **env, **({"PORT": str(port)} if port else {})}
        self.log = log
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None
        self.kills = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: bool = True) -> None:
        with self.log.open("ab") as log:  # the child keeps its own copy
            self.process = subprocess.Popen([sys.executable, "-m", self.module], env=self.env, stderr=log)
        if wait and self.port is not None:
            wait_until(self.answers, timeout=30)

    def answers(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.kills += 1
        self.process = None

    def stop(self) -> None:
        """SIGTERM, as a deployment stops it (a worker finishes its batch)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None
