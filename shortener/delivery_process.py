"""The processes of `shortener serve` that deliver webhooks, beside the workers that serve
requests: one per CPU (up to MAX_PROCESSES), sharing each endpoint's events through its
consumer group. They run only on CPU time the workers leave: taps come first, and deliveries
catch up as soon as a burst of taps is over. Events wait in Redis, so a
delivery that a busy moment delays is late, never lost."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import logging.config
import multiprocessing
import os
import signal
import time

from shortener.config import load_settings
from shortener.credentials import with_credentials
from shortener.metrics import MULTIPROCESS_ENV
from shortener.runtime import open_runtime

log = logging.getLogger("shortener")

# Added to the process's niceness: below the workers, so that a tap never waits for it.
NICENESS = 19


def yield_to_others() -> None:
    """Run only on CPU time nothing else wants (Linux's idle class), or else at the lowest
    niceness: even at niceness 19 the scheduler gives a busy process a share of a CPU that
    workers want."""
    with contextlib.suppress(OSError):
        os.nice(NICENESS)
    idle = getattr(os, "SCHED_IDLE", None)
    if idle is not None:
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, idle, os.sched_param(0))


# How often it checks that `shortener serve` is still there, so that it never outlives it.
PARENT_CHECK_SECONDS = 1.0
# A delivery under way gets this long to finish when the service stops.
STOP_SECONDS = 12.0
# A delivery process keeps one CPU busy while a backlog drains; more than a few would only
# take memory from a larger machine's workers.
MAX_PROCESSES = 4

Process = multiprocessing.process.BaseProcess


def process_count() -> int:
    return max(1, min(os.cpu_count() or 1, MAX_PROCESSES))


def start(log_config: dict[str, object], metrics_dir: str) -> list[Process]:
    """Start the delivery processes; they read the same configuration as the workers, and
    write their metrics to files in `metrics_dir`, where /metrics finds them."""
    context = multiprocessing.get_context("spawn")
    processes: list[Process] = [
        context.Process(
            target=_main, args=(os.getpid(), log_config), name="shortener-webhooks", daemon=True
        )
        for _ in range(process_count())
    ]
    # A child reads it when it first imports the metrics, before any code of ours runs.
    before = os.environ.get(MULTIPROCESS_ENV)
    os.environ[MULTIPROCESS_ENV] = metrics_dir
    try:
        for process in processes:
            process.start()
    finally:
        if before is None:
            del os.environ[MULTIPROCESS_ENV]
        else:
            os.environ[MULTIPROCESS_ENV] = before
    return processes


def stop(processes: list[Process]) -> None:
    """Stop them together: each gets its deliveries under way's time to finish."""
    for process in processes:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + STOP_SECONDS
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():
            process.kill()
            process.join(5)


def _main(parent: int, log_config: dict[str, object]) -> None:
    yield_to_others()
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
