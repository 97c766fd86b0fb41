"""The `shortener` command: `serve`, and ops commands that read the store directly."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from shortener import embedded
from shortener.config import Settings, SettingsError, load_settings
from shortener.credentials import with_credentials


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    server = None
    if settings.embedded:
        # Started here, before the workers, so that they all attach to this one server and
        # it outlives each of them; stopped once the last worker has finished.
        server = embedded.attach_or_start(settings.data_dir)
        print(f"Embedded Redis at {server.socket_path}", flush=True)
    try:
        uvicorn.run(
            "shortener.app:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            loop="uvloop",
            http="httptools",
            proxy_headers=True,
            server_header=False,
            log_level="info",
        )
    finally:
        if server is not None:
            server.stop()
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shortener", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = with_credentials(load_settings(), announce=True)
    except SettingsError as error:
        print(f"shortener: {error}", file=sys.stderr)
        return 2
    if args.command == "serve":
        if args.workers < 1:
            print("shortener: --workers must be 1 or more", file=sys.stderr)
            return 2
        # The workers read the same files; pin the data dir so that they all agree on it.
        os.environ.setdefault("SHORTENER_DATA_DIR", str(settings.data_dir.resolve()))
        return _serve(settings, args)
    return 2
