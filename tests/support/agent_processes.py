"""Processes for the agent's end-to-end test: `stockyard serve` (the API and the workers in
one process) on a fixed port, and `stockyard agent run` next to the ERP, each logging to
its own file; stopped by signal, or at the end of the test whatever happened."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


class Processes:
    """The processes one test started, by name; each one's output in `folder/<name>.log`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *argv: str) -> subprocess.Popen[bytes]:
        assert name not in self.running, f"{name} runs already"
        with (self.folder / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "stockyard", *argv],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "COLUMNS": "200"},
            )
        self.running[name] = process
        return process

    def serve(self, port: int, database: str) -> None:
        """`stockyard serve` with its in-process workers (the default lease: 6 s), once it
        answers /readyz."""
        process = self.start("serve", "serve", "--port", str(port), "--db", database)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, f"stockyard serve exited:\n{self.log('serve')}"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"stockyard serve not ready:\n{self.log('serve')}")

    def agent(self, config: Path) -> None:
        self.start("agent", "agent", "run", "--config", str(config))

    def stop(self, name: str, how: signal.Signals = signal.SIGTERM) -> int:
        """Signal the process and wait for it; its exit status."""
        process = self.running.pop(name)
        process.send_signal(how)
        return process.wait(60)

    def log(self, name: str, tail: int = 60) -> str:
        path = self.folder / f"{name}.log"
        lines = path.read_text(errors="replace").splitlines() if path.exists() else []
        return "\n".join(lines[-tail:])

    def close(self) -> None:
        for name in list(self.running):
            process = self.running.pop(name)
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)


@contextmanager
def processes(folder: Path) -> Iterator[Processes]:
    """The test's processes, stopped when it ends; their logs printed (pytest shows them
    for a failed test)."""
    started = Processes(folder)
    try:
        yield started
    finally:
        started.close()
        for path in sorted(folder.glob("*.log")):
            print(f"----- {path.name} (last lines)\n{started.log(path.stem)}")
