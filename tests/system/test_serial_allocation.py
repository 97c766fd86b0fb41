"""Serials in blocks across processes: allocators in several processes never hand out one
serial twice."""

from __future__ import annotations

import multiprocessing
from multiprocessing.queues import Queue

import pytest

from tests.support import allocator_process
from tests.support.redis_servers import RedisServer

ALLOCATING_PROCESSES = 4


@pytest.mark.timeout(120)
def test_allocators_in_many_processes_never_share_a_serial(redis_server: RedisServer) -> None:
    # Spawned, not forked: each process has its own interpreter, event loop and Redis
    # connections, as the workers of a service have.
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(ALLOCATING_PROCESSES)
    results: Queue[list[int]] = context.Queue()
    processes = [
        context.Process(
            target=allocator_process.allocate, args=(redis_server.url, seed, start, results)
        )
        for seed in range(ALLOCATING_PROCESSES)
    ]
    for process in processes:
        process.start()
    try:
        batches = [results.get(timeout=allocator_process.START_SECONDS) for _ in processes]
    finally:
        for process in processes:
            process.join(10)
            if process.exitcode is None:
                process.kill()
                process.join()
    assert [process.exitcode for process in processes] == [0] * len(processes)
    serials = [serial for batch in batches for serial in batch]
    assert all(batches)
    assert len(serials) == len(set(serials))
    assert min(serials) >= 1
