"""The process of `shortener serve` that delivers webhooks, beside the workers that serve
requests. It runs at a lower CPU priority: taps come first, and deliveries take the CPU time
they leave, catching up as soon as a burst of taps is over. Its events wait in Redis, so a
delivery that a busy moment delays is late, never lost."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import logging.config
import multiprocessing
import os
import signal

from shortener.config import load_settings
from shortener.credentials import with_credentials
from shortener.metrics import MULTIPROCESS_ENV
from shortener.runtime import open_runtime

log = logging.getLogger("shortener")

# Added to the process's niceness: below the workers, so that a tap never waits for it.
NICENESS = 19
# How often it checks that `shortener serve` is still there, so that it never outlives it.
PARENT_CHECK_SECONDS = 1.0
# A delivery under way gets this long to finish when the service stops.
STOP_SECONDS = 12.0


def start(log_config: dict[str, object], metrics_dir: str) -> multiprocessing.process.BaseProcess:
    """Start the delivery process; it reads the same configuration as the workers, and writes
    its metrics to files in `metrics_dir`, where /metrics finds them."""
    context = multiprocessing.get_context("spawn")
    process = context.Process(
        target=_main, args=(os.getpid(), log_config), name="shortener-webhooks", daemon=True
    )
    # The child reads it when it first imports the metrics, before any code of ours runs.
    before = os.environ.get(MULTIPROCESS_ENV)
    os.environ[MULTIPROCESS_ENV] = metrics_dir
    try:
        process.start()
    finally:
        if before is None:
            del os.environ[MULTIPROCESS_ENV]
        else:
            os.environ[MULTIPROCESS_ENV] = before
    return process


def stop(process: multiprocessing.process.BaseProcess) -> None:
    if process.is_alive():
        process.terminate()
        process.join(STOP_SECONDS)
    if process.is_alive():
        process.kill()
        process.join(5)


def _main(parent: int, log_config: dict[str, object]) -> None:
    with contextlib.suppress(OSError):
        os.nice(NICENESS)
    logging.config.dictConfig(log_config)
    try:
        import uvloop

        uvloop.run(_deliver(parent))
    except KeyboardInterrupt:
        pass


async def _deliver(parent: int) -> None:
    settings = with_credentials(load_settings(), announce=False)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)

    async def watch_parent() -> None:
        while not stop.is_set():
            if os.getppid() != parent:
                log.warning("shortener serve is gone; webhook delivery stops")
                stop.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), PARENT_CHECK_SECONDS)

    async with open_runtime(settings) as runtime:
        await asyncio.gather(runtime.deliverer().run(stop), watch_parent())
