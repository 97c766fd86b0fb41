"""Coalescing concurrent Redis commands into pipelines.

With redis-py the per-command cost of the client, not Redis, limits a busy event loop: each
awaited command takes a connection, writes, and parses on its own. Commands that concurrent
requests issue within one event-loop tick are instead queued and sent as one pipeline, one
write and one read for all of them, so the cost per command falls with load while a lone
command still goes out at the next tick.

On a single Redis a batch is written on one connection of the client's pool as the commands'
RESP (packed by hiredis) and read back reply by reply, with the client's own reply parsing:
redis-py's pipeline object, its command stack and its retry wrapper cost about as much CPU per
tap as the service's own code. On a Redis Cluster each batch goes out as one pipeline per node,
so that a node that is down fails its own commands and no others; and when a node is lost the
client fetches the slot map again, to find the replica that took over (see
`AutoPipeline._node_lost`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Sequence
from typing import Any

import hiredis
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

Command = tuple[Any, ...]

# Errors that say a node did not answer, raised for a pipeline or given as a command's reply.
_NODE_LOST = (RedisConnectionError, RedisTimeoutError, TimeoutError, OSError)
# While a master is down and not yet replaced, every batch for it fails: the slot map is
# fetched again at most this often.
SLOT_MAP_PAUSE_SECONDS = 0.1


class _Group:
    """The commands of one caller: sent in order, in one pipeline, answered together."""

    __slots__ = ("commands", "future")

    def __init__(self, commands: Sequence[Command], future: asyncio.Future[list[Any]]) -> None:
        self.commands = commands
        self.future = future


def _key_of(command: Command) -> Any:
    """The first key of a command: after a script's key count, else its first argument."""
    if command[0] in ("EVALSHA", "EVAL"):
        return command[3] if int(command[2]) > 0 else None
    return command[1] if len(command) > 1 else None


def _by_node(cluster: RedisCluster, batch: list[_Group]) -> Iterable[list[_Group]]:
    """A batch split by the node that holds each group's keys. Groups with keys on several
    nodes, or on none that the client knows, go together."""
    parts: dict[str, list[_Group]] = {}
    for group in batch:
        nodes = set()
        for command in group.commands:
            key = _key_of(command)
            try:
                node = None if key is None else cluster.get_node_from_key(key)
            except RedisClusterException:
                node = None
            nodes.add("" if node is None else node.name)
        parts.setdefault(nodes.pop() if len(nodes) == 1 else "", []).append(group)
    return parts.values()


class AutoPipeline:
    __slots__ = (
        "_cluster",
        "_in_flight",
        "_max_batch",
        "_queue",
        "_redis",
        "_scheduled",
        "_slot_map",
        "_timeout",
    )

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
        self._cluster = redis if isinstance(redis, RedisCluster) else None
        self._slot_map: asyncio.Task[None] | None = None

    def execute_many(self, commands: Sequence[Command]) -> asyncio.Future[list[Any]]:
        """Send commands, in order, in one pipeline: their replies, a command's error in its
        place, once awaited. Failing to reach Redis at all raises. A future rather than a
        coroutine: every tap awaits it, and each coroutine between costs a step."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Any]] = loop.create_future()
        self._queue.append(_Group(commands, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return future

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
        for part in [batch] if self._cluster is None else _by_node(self._cluster, batch):
            task = loop.create_task(self._send(part))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    async def _send(self, batch: list[_Group]) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                commands = [command for group in batch for command in group.commands]
                if self._cluster is None:
                    replies = await self._exchange(commands)
                else:
                    async with self._redis.pipeline(transaction=False) as pipe:
                        for command in commands:
                            pipe.execute_command(*command)
                        replies = await pipe.execute(raise_on_error=False)
        except BaseException as error:
            for group in batch:
                if not group.future.done():
                    group.future.set_exception(error)
            if isinstance(error, _NODE_LOST):
                self._node_lost()
            if not isinstance(error, Exception):
                raise
            return
        if self._cluster is not None and any(isinstance(r, _NODE_LOST) for r in replies):
            self._node_lost()
        start = 0
        for group in batch:
            end = start + len(group.commands)
            # A caller that gave up (timed out) while the batch was under way is skipped.
            if not group.future.done():
                group.future.set_result(replies[start:end])
            start = end

    async def _exchange(self, commands: list[Command]) -> list[Any]:
        """The replies of a single Redis to the commands, a command's error in its place. A
        connection found closed before any reply (Redis restarted since it was last used) is
        replaced once, as the client itself would retry."""
        packed = b"".join(hiredis.pack_command(command) for command in commands)
        replies = await self._exchange_once(packed, commands, last=False)
        if replies is None:
            replies = await self._exchange_once(packed, commands, last=True)
        assert replies is not None
        return replies

    async def _exchange_once(
        self, packed: bytes, commands: list[Command], *, last: bool
    ) -> list[Any] | None:
        """The replies, on one connection of the pool; None where it was found closed before
        any reply and this is not the `last` try."""
        assert isinstance(self._redis, Redis)
        pool = self._redis.connection_pool
        connection = await pool.get_connection()  # type: ignore[no-untyped-call]
        assert isinstance(connection, AbstractConnection)
        replies: list[Any] = []
        try:
            await connection.send_packed_command(packed, check_health=False)
            for command in commands:
                replies.append(await self._reply(connection, command))
            return replies
        except (RedisConnectionError, OSError):
            await connection.disconnect(nowait=True)
            if replies or last:
                raise
            return None
        except BaseException:
            # Its replies may still come, and must not be read as another batch's.
            await connection.disconnect(nowait=True)
            raise
        finally:
            await pool.release(connection)

    async def _reply(self, connection: AbstractConnection, command: Command) -> Any:
        """A command's reply as the client's own pipeline gives it: parsed by the command's
        callback, or the error Redis answered."""
        try:
            reply = await connection.read_response()
        except ResponseError as error:
            return error
        callback = self._redis.response_callbacks.get(command[0])
        return reply if callback is None else callback(reply)

    def _node_lost(self) -> None:
        """Have a cluster client fetch the slot map again, once at a time.

        redis-py would do so itself by retrying the pipeline, but it retries by closing every
        connection of the client, those of the other nodes' batches under way too; so the
        client given here is made not to retry (see `store.connect`), and this does the part
        of a retry that matters: without it, the client would keep sending a dead master's
        slots to it.
        """
        if self._cluster is None or (self._slot_map is not None and not self._slot_map.done()):
            return
        self._slot_map = asyncio.get_running_loop().create_task(self._fetch_slot_map(self._cluster))

    async def _fetch_slot_map(self, cluster: RedisCluster) -> None:
        # No node answering is what the next batch will find out too.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self._timeout):
                await cluster.nodes_manager.initialize()
        await asyncio.sleep(SLOT_MAP_PAUSE_SECONDS)

    async def aclose(self) -> None:
        """Stop fetching the slot map."""
        if self._slot_map is not None and not self._slot_map.done():
            self._slot_map.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._slot_map
