"""Minimal Starlette apps that bound what a tap can cost, for `bench/bench.py` to compare with.

`python bench/reference_apps.py APP --port PORT [--redis-url URL]`, APP one of:

- `fixed`: a fixed 302, no I/O: the cost of the framework and the server alone;
- `get`: one awaited redis-py `GET` of `ref:{code}` per request, then 302 to the stored URL;
- `get-xadd`: the same `GET`, then one awaited `XADD`, then 302: a tracked tap done naively;
- `pipelined`: the `GET`s that concurrent requests issue within one event-loop tick go to
  Redis as one pipeline, then each gets its 302;
- `receiver`: a webhook receiver that answers every `POST` 204 and counts what it got:
  `GET /count` answers `{"posts": N, "events": M}` (M: distinct `webhook-id`s).

Each is served like the service: one uvicorn worker with uvloop and httptools, no access log.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, cast

import redis.asyncio as aioredis
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shortener.delivery_process import yield_to_others

KEY_PREFIX = "ref:"
STREAM_KEY = "ref:ix"
POOL_SIZE = 64
FIXED_TARGET = "https://shop.example.com/orders/00000000?utm_source=sms&cp=1"
APPS = ("fixed", "get", "get-xadd", "pipelined", "receiver")

Lookup = Callable[[str], Awaitable[bytes | None]]


def _redirect(target: str) -> Response:
    return Response(status_code=302, headers={"location": target})


class AutoPipeline:
    """GETs queued while the loop runs other callbacks leave as one pipeline on the next turn.

    One round trip then serves every request that became ready in the same tick, instead of
    one round trip (and one pool checkout) each.
    """

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._queue: list[tuple[str, asyncio.Future[bytes | None]]] = []
        # Flushes are tasks nobody awaits; holding them keeps them from being collected.
        self._flushing: set[asyncio.Task[None]] = set()

    def get(self, key: str) -> asyncio.Future[bytes | None]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bytes | None] = loop.create_future()
        if not self._queue:
            loop.call_soon(self._flush)
        self._queue.append((key, future))
        return future

    def _flush(self) -> None:
        batch, self._queue = self._queue, []
        task = asyncio.ensure_future(self._send(batch))
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def _send(self, batch: list[tuple[str, asyncio.Future[bytes | None]]]) -> None:
        try:
            pipe = self._client.pipeline(transaction=False)
            for key, _ in batch:
                pipe.get(key)
            values = await pipe.execute()
        except Exception as error:
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        for (_, future), value in zip(batch, values, strict=True):
            if not future.done():
                future.set_result(value)


def receiver_app() -> Callable[..., Awaitable[None]]:
    """A bare ASGI app: the receiver's own cost must not be what the bench measures."""
    counts = {"posts": 0}
    ids: set[bytes] = set()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        if scope["method"] == "POST":
            counts["posts"] += 1
            ids.update(value for key, value in scope["headers"] if key == b"webhook-id")
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        body = json.dumps({"posts": counts["posts"], "events": len(ids)}).encode()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def build_app(name: str, redis_url: str) -> Any:
    if name == "receiver":
        # It stands for a machine elsewhere. Here it shares two CPUs with the taps, so it runs
        # at the delivery processes' priority: its CPU time is not taken from the taps either.
        yield_to_others()
        return receiver_app()
    if name == "fixed":

        async def fixed(request: Request) -> Response:
            return _redirect(FIXED_TARGET)

        return Starlette(routes=[Route("/{code}", fixed, methods=["GET"])])

    client = aioredis.Redis(
        connection_pool=aioredis.ConnectionPool.from_url(redis_url, max_connections=POOL_SIZE)
    )
    # Without decode_responses the client answers bytes, as the auto-pipeline does.
    lookup = AutoPipeline(client).get if name == "pipelined" else cast(Lookup, client.get)
    record = name == "get-xadd"

    async def tap(request: Request) -> Response:
        code = request.path_params["code"]
        value = await lookup(KEY_PREFIX + code)
        if value is None:
            return Response(status_code=404)
        target = value.decode()
        if record:
            await client.xadd(STREAM_KEY, {"t": "c", "k": code, "u": target})
        return _redirect(target)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await client.aclose()

    return Starlette(routes=[Route("/{code}", tap, methods=["GET"])], lifespan=lifespan)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("app", choices=APPS)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args(argv)
    uvicorn.run(
        build_app(args.app, args.redis_url),
        host="127.0.0.1",
        port=args.port,
        workers=1,
        loop="uvloop",
        http="httptools",
        access_log=False,
        server_header=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
