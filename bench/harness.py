"""What the bench and soak drivers share: starting and stopping their own Redis and service.

Every process is started in a session of its own and dies with the driver, and every wait
is bounded, so that a run leaves nothing behind, also on Ctrl-C or failure.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import redis

ROOT = Path(__file__).resolve().parents[1]
# The Redis and service launchers are the tests' own (tests/support), so that the bench runs
# what the tests run.
sys.path.insert(0, str(ROOT))

from tests.support.redis_servers import free_port, server_args  # noqa: E402
from tests.support.service import CLI, service_env  # noqa: E402

START_SECONDS = 30.0
STOP_SECONDS = 15.0
PR_SET_PDEATHSIG = 1
LOG_LINES = 15


class HarnessError(Exception):
    """A server did not start or answered unexpectedly; the message says what."""


@dataclass
class Server:
    name: str
    base_url: str
    process: subprocess.Popen[bytes]
    log: Path


@dataclass
class Service(Server):
    api_key: str


def _die_with_parent() -> None:
    # Runs in the child before exec: if the driver is killed outright (SIGKILL), what it
    # started gets SIGTERM rather than running on unowned.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(
    args: Sequence[str],
    log: Path,
    env: dict[str, str] | None = None,
    *,
    stdout: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start a program writing to `log`; its standard output too unless `stdout` names a file
    of its own (for the service: its log is JSON lines, while what it tells the person who
    started it, such as where links start, goes to standard output)."""
    with open(log, "wb") as err, open(stdout or os.devnull, "wb") as out:
        # A session of its own: a terminal's Ctrl-C reaches only the driver, which stops its
        # servers in order (a service before its Redis), and a stuck server's workers can be
        # killed as one process group.
        return subprocess.Popen(
            list(args),
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=err if stdout is None else out,
            stderr=err,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )


def stop(process: subprocess.Popen[bytes], name: str) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        print(f"{name} did not stop within {STOP_SECONDS:.0f} s; killing it", file=sys.stderr)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(STOP_SECONDS)


def tail(path: Path, lines: int = LOG_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def redis_server(
    directory: Path,
    *,
    persistent: bool = False,
    socket_timeout: float = 30,
    log_lines: int = LOG_LINES,
) -> Iterator[tuple[redis.Redis, str]]:
    """A `redis-server` on 127.0.0.1 with its files in `directory`: a client and its URL.

    Without `persistent` it writes nothing to disk, so that runs measure the request paths;
    with it, an append-only file synced every second, so that the load pays for durable writes.
    """
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    args = server_args(port, directory, append_fsync="everysec" if persistent else None)
    log = directory / "redis.log"
    process = spawn(args, log)
    client = redis.Redis(port=port, socket_timeout=socket_timeout, socket_connect_timeout=1)
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            with contextlib.suppress(redis.ConnectionError):
                if client.ping():
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise HarnessError(f"redis-server did not start:\n{tail(log, log_lines)}")
            time.sleep(0.05)
        yield client, f"redis://127.0.0.1:{port}/0"
    finally:
        client.close()
        stop(process, "redis-server")


@contextlib.contextmanager
def http_server(
    name: str,
    args: Sequence[str],
    log: Path,
    probe: str,
    env: dict[str, str] | None = None,
    *,
    ready_status: int | None = None,
    unanswered: str = f"within {START_SECONDS:.0f} s",
    log_lines: int = LOG_LINES,
) -> Iterator[Server]:
    """Start a server on the port in its `args`; up once `probe` answers `ready_status`, or
    anything when that is None. `unanswered` ends the error of a server that never answers."""
    port = int(args[list(args).index("--port") + 1])
    process = spawn(args, log, env, stdout=log.with_suffix(".stdout"))
    server = Server(name, f"http://127.0.0.1:{port}", process, log)
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            if process.poll() is not None:
                raise HarnessError(f"{name} exited at start:\n{tail(log, log_lines)}")
            with contextlib.suppress(httpx.TransportError):
                status = httpx.get(server.base_url + probe, timeout=1).status_code
                if ready_status is None or status == ready_status:
                    break
            if time.monotonic() > deadline:
                raise HarnessError(f"{name} did not answer {unanswered}:\n{tail(log, log_lines)}")
            time.sleep(0.1)
        yield server
    finally:
        stop(process, name)


@contextlib.contextmanager
def running_service(
    redis_url: str,
    directory: Path,
    org: str,
    *,
    workers: int = 1,
    name: str = "the service",
    log_name: str = "service-{port}.log",
    unanswered: str = f"within {START_SECONDS:.0f} s",
    log_lines: int = LOG_LINES,
    settings: dict[str, str] | None = None,
) -> Iterator[Service]:
    """`shortener serve` on `redis_url` with a fresh API key of `org`, up once /healthz is;
    `settings` are more SHORTENER_ settings (lowercase, without the prefix)."""
    port = free_port()
    api_key = f"{org}-{secrets.token_urlsafe(24)}"
    env = service_env(
        redis_url,
        directory,
        api_keys=f"{api_key}:{org}",
        signing_keys=f"1:{secrets.token_urlsafe(32)}",
        base_url=f"http://127.0.0.1:{port}",
        **(settings or {}),
    )
    args = [*CLI, "serve", "--port", str(port), "--workers", str(workers)]
    log = directory / log_name.format(port=port)
    with http_server(
        name,
        args,
        log,
        "/healthz",
        env,
        ready_status=200,
        unanswered=unanswered,
        log_lines=log_lines,
    ) as server:
        yield Service(server.name, server.base_url, server.process, server.log, api_key)


def issue_codes(
    service: Service,
    messages: Sequence[dict[str, Any]],
    tracked: Sequence[bool],
    *,
    batch: int,
    timeout: float,
) -> list[str]:
    """Shorten messages of one link each, `batch` a call; the code of each message's link.

    `tracked` says of each message whether its link must come back tracked.
    """
    codes: list[str] = []
    headers = {"Authorization": f"Bearer {service.api_key}"}
    with httpx.Client(base_url=service.base_url, headers=headers, timeout=timeout) as client:
        for start in range(0, len(messages), batch):
            response = client.post(
                "/v1/messages/batch", json={"messages": list(messages[start : start + batch])}
            )
            if response.status_code != 200:
                raise HarnessError(f"seeding: {response.status_code} {response.text[:500]}")
            wanted = tracked[start : start + batch]
            for want, result in zip(wanted, response.json()["results"], strict=True):
                (link,) = result["links"]
                if link["tracked"] != want or not link["code"]:
                    raise HarnessError(f"seeding: unexpected link {link}")
                codes.append(link["code"])
    return codes


def wrong_redirects(expected: Sequence[tuple[str, str]], user_agent: str) -> list[str]:
    """GET each URL of the (URL, Location) pairs, one at a time; the answers that were not a
    302 to its Location."""
    wrong = []
    with httpx.Client(headers={"User-Agent": user_agent}, timeout=10) as client:
        for url, location in expected:
            response = client.get(url)
            found = response.headers.get("location")
            if response.status_code != 302 or found != location:
                answer = f"{response.status_code} to {found}" if found else response.status_code
                wrong.append(f"{url}: {answer}, not 302 to {location}")
    return wrong
