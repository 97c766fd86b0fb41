"""`shortener serve` as a real process, for tests that need a socket, workers or logs, and the
environment it runs in (which `bench/` uses too)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.redis_servers import free_port

API_KEY = "process-test-key-0123456789"
OTHER_KEY = "process-test-key-other-0123"
ADMIN_KEY = "process-test-admin-key-0123"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
ADMIN_AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
START_SECONDS = 30
CLI = (sys.executable, "-m", "shortener")


@dataclass
class Service:
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str]

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def shorten(self, body: str, key: str = API_KEY, **extra: Any) -> dict[str, Any]:
        response = httpx.post(
            f"{self.base_url}/v1/messages/shorten",
            json={"body": body, **extra},
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result


def service_env(
    redis_url: str | None,
    data_dir: Path,
    *,
    api_keys: str = f"{API_KEY}:org-a,{OTHER_KEY}:org-b",
    signing_keys: str = "1:process-signing-secret-0123456789",
    admin_keys: str = ADMIN_KEY,
    **settings: str,
) -> dict[str, str]:
    """This process's environment without its SHORTENER_ settings, with these instead."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHORTENER_")}
    # With one worker the metrics must be the process's own, not a leftover directory's.
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env["SHORTENER_DATA_DIR"] = str(data_dir)
    env["SHORTENER_API_KEYS"] = api_keys
    env["SHORTENER_SIGNING_KEYS"] = signing_keys
    env["SHORTENER_ADMIN_KEYS"] = admin_keys
    # Interactions settle in a second, so that tests wait for little.
    env["SHORTENER_SETTLE_SECONDS"] = "1"
    if redis_url is not None:
        env["SHORTENER_REDIS_URL"] = redis_url
    env.update({f"SHORTENER_{name.upper()}": value for name, value in settings.items()})
    return env


@contextmanager
def running_service(
    env: dict[str, str], workers: int = 1, *, host: str | None = None, set_base_url: bool = True
) -> Iterator[Service]:
    """`shortener serve` on a free port. With `set_base_url`, links name that port through
    SHORTENER_BASE_URL (unless `env` sets it); without, the service derives them itself."""
    port = free_port()
    if set_base_url:
        env = {
            **env,
            "SHORTENER_BASE_URL": env.get("SHORTENER_BASE_URL", f"http://127.0.0.1:{port}"),
        }
    log_path = Path(env["SHORTENER_DATA_DIR"]) / f"service-{port}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    listen = ["--host", host] if host is not None else []
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [*CLI, "serve", *listen, "--port", str(port), "--workers", str(workers)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    service = Service(f"http://127.0.0.1:{port}", process, log_path, env)
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the service exited early:\n{service.logs()}")
            try:
                if httpx.get(f"{service.base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the service did not start:\n{service.logs()}")
            time.sleep(0.1)
        yield service
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
