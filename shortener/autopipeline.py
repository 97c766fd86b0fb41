"""Coalescing concurrent Redis commands into pipelines.

With redis-py the per-command cost of the client, not Redis, limits a busy event loop: each
awaited command takes a connection, writes, and parses on its own. Commands that concurrent
requests issue within one event-loop tick are instead queued and sent as one pipeline, one
write and one read for all of them, so the cost per command falls with load while a lone
command still goes out at the next tick.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

Command = tuple[Any, ...]


class _Group:
    """The commands of one caller: sent in order, in one pipeline, answered together."""

    __slots__ = ("commands", "future")

    def __init__(self, commands: Sequence[Command], future: asyncio.Future[list[Any]]) -> None:
        self.commands = commands
        self.future = future


class AutoPipeline:
    __slots__ = ("_in_flight", "_max_batch", "_queue", "_redis", "_scheduled", "_timeout")

    def __init__(self, redis: Redis | RedisCluster, timeout: float, max_batch: int = 512) -> None:
        self._redis = redis
        # One deadline per batch rather than one timer per command: commands of a batch are
        # answered together or fail together.
        self._timeout = timeout
        self._max_batch = max_batch
        self._queue: list[_Group] = []
        self._scheduled = False
        # Strong references: the loop keeps only weak ones to running tasks.
        self._in_flight: set[asyncio.Task[None]] = set()

    async def execute(self, *command: Any) -> Any:
        """Send one command with whatever else this tick sends; its reply, or its error."""
        reply = (await self.execute_many([command]))[0]
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def execute_many(self, commands: Sequence[Command]) -> list[Any]:
        """Send commands, in order, in one pipeline; their replies, a command's error in its
        place. Failing to reach Redis at all raises."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Any]] = loop.create_future()
        self._queue.append(_Group(commands, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._scheduled = False
        queue, self._queue = self._queue, []
        loop = asyncio.get_running_loop()
        batch: list[_Group] = []
        size = 0
        for group in queue:
            # A caller's commands never straddle two pipelines, which could run out of order.
            if batch and size + len(group.commands) > self._max_batch:
                self._start(loop, batch)
                batch, size = [], 0
            batch.append(group)
            size += len(group.commands)
        if batch:
            self._start(loop, batch)

    def _start(self, loop: asyncio.AbstractEventLoop, batch: list[_Group]) -> None:
        task = loop.create_task(self._send(batch))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _send(self, batch: list[_Group]) -> None:
        try:
            async with (
                asyncio.timeout(self._timeout),
                self._redis.pipeline(transaction=False) as pipe,
            ):
                for group in batch:
                    for command in group.commands:
                        pipe.execute_command(*command)
                replies = await pipe.execute(raise_on_error=False)
        except BaseException as error:
            for group in batch:
                if not group.future.done():
                    group.future.set_exception(error)
            if not isinstance(error, Exception):
                raise
            return
        start = 0
        for group in batch:
            end = start + len(group.commands)
            # A caller that gave up (timed out) while the batch was under way is skipped.
            if not group.future.done():
                group.future.set_result(replies[start:end])
            start = end
