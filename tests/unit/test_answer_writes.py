"""How answers leave the server's protocol, on a transport that records each write: an answer
to a request with a method other than GET and HEAD goes out head and body in one write (one
system call, where uvicorn makes two); taps' answers are left as uvicorn writes them. Either
way every answer arrives whole and in order."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.server import ServerState

from shortener.http.server import BoundedHttpProtocol

ADDRESSES = {"peername": ("127.0.0.1", 50_000), "sockname": ("127.0.0.1", 8_000)}


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ADDRESSES.get(name, default)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    request = await receive()
    body = b"" if scope["path"] == "/empty" else b"echo:" + request.get("body", b"")
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def writes_for(*requests: bytes) -> tuple[list[bytes], bool]:
    """What the protocol writes for requests sent on one connection, and whether it closed."""
    config = Config(app=app, lifespan="off", log_config=None)
    config.load()
    protocol = BoundedHttpProtocol(config, ServerState(), {})
    transport = RecordingTransport()
    protocol.connection_made(transport)
    protocol.data_received(b"".join(requests))
    # Each answer is written by a task of its own, one after the other.
    for _ in range(50):
        await asyncio.sleep(0)
    closed = transport.closed
    protocol.connection_lost(None)
    return transport.writes, closed


def post(path: str, body: bytes, *fields: str) -> bytes:
    head = [f"POST {path} HTTP/1.1", "Host: sho.rt", f"Content-Length: {len(body)}", *fields]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def request(method: str, path: str) -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: sho.rt\r\n\r\n".encode()


async def test_an_answer_to_a_post_is_one_write_of_head_and_body() -> None:
    writes, closed = await writes_for(post("/v1/messages/shorten", b'{"body": "hi"}'))
    (answer,) = writes
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert answer.endswith(b'\r\n\r\necho:{"body": "hi"}')
    assert not closed


async def test_pipelined_posts_are_answered_in_order_one_write_each() -> None:
    writes, _ = await writes_for(post("/a", b"one"), post("/empty", b""), post("/b", b"two"))
    assert len(writes) == 3
    assert writes[0].endswith(b"echo:one")
    assert writes[1].startswith(b"HTTP/1.1 200 OK\r\n") and writes[1].endswith(b"\r\n\r\n")
    assert writes[2].endswith(b"echo:two")


async def test_a_post_on_a_closing_connection_is_answered_whole_before_it_closes() -> None:
    writes, closed = await writes_for(post("/a", b"last", "Connection: close"))
    (answer,) = writes
    assert b"connection: close" in answer.lower() and answer.endswith(b"echo:last")
    assert closed


async def test_get_and_head_answers_are_written_as_uvicorn_writes_them() -> None:
    writes, _ = await writes_for(request("GET", "/x"), request("HEAD", "/x"))
    answers = b"".join(writes)
    assert answers.count(b"HTTP/1.1 200 OK\r\n") == 2
    get_answer, head_answer = answers.split(b"HTTP/1.1 200 OK\r\n")[1:]
    assert get_answer.endswith(b"\r\n\r\necho:")
    # A HEAD answer has its head alone.
    assert head_answer.endswith(b"\r\n\r\n")
