"""`tecmon serve` as a real child process that a test may SIGKILL and start again.

Shared by the recovery, API and browser tests and by the soak (`tests.soak`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


class ServeProcess:
    def __init__(self, workdir: Path, settings: dict[str, Any], start_timeout_s: float = 30.0) -> None:
        self.config = workdir / "tecmon.yaml"
        self.config.write_text(yaml.safe_dump(settings))
        self.api = f"http://127.0.0.1:{settings['api']['port']}"
        self.log = workdir / "serve.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.start_timeout_s = start_timeout_s

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve", "--workers", "1",
                                          "--config", str(self.config)], cwd=ROOT, env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + self.start_timeout_s
        while not self._healthy():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                pytest.fail(f"tecmon serve did not come up:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.api}/healthz", timeout=1) as reply:
                return bool(json.loads(reply.read())["mqtt_connected"])
        except OSError:
            return False

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(20)
