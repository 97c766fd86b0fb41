"""Real `redis-server` processes, from the binary the project depends on: for the tests, and
for `bench/`, which starts its servers with the same arguments."""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from shortener.store.embedded import COMPACT_HASH_CONFIG, server_binary


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_args(port: int, directory: Path, *, append_fsync: str | None = None) -> list[str]:
    """A `redis-server` on 127.0.0.1:`port` with its files in `directory`, never saving RDB
    snapshots; with `append_fsync` (`always`, `everysec`), an append-only file synced so.
    Small hashes are compact from the start, as the service asks with CONFIG SET anyway, so
    that memory figures do not hinge on that being allowed."""
    args = [server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory)]
    args += ["--save", ""]
    if append_fsync is None:
        args += ["--appendonly", "no"]
    else:
        args += ["--appendonly", "yes", "--appendfsync", append_fsync]
    for name, value in COMPACT_HASH_CONFIG.items():
        args += [f"--{name}", value]
    return args


def answers_ping(port: int) -> bool:
    """Whether a Redis on this loopback port answers PING."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class RedisServer:
    """One `redis-server` on a loopback TCP port that a test can stop and start again."""

    directory: Path
    port: int
    persistent: bool = False
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        args = server_args(
            self.port, self.directory, append_fsync="always" if self.persistent else None
        )
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {self.port} did not start")
            time.sleep(0.02)

    def answers(self) -> bool:
        return answers_ping(self.port)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
        self.process = None
