"""The `shortener` command: `serve`, and ops commands that read the store directly."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime

from shortener import embedded
from shortener.config import Settings, SettingsError, load_settings
from shortener.credentials import with_credentials
from shortener.links import link_info
from shortener.metrics import MULTIPROCESS_ENV
from shortener.observability import log_config
from shortener.parsing import whole_number
from shortener.runtime import open_runtime
from shortener.store import StoreUnavailable

_DURATION = re.compile(r"([^smhdw]*)([smhdw]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    # Library warnings go through logging, so that the log stays JSON lines.
    logging.captureWarnings(True)
    # uvicorn shuts down gracefully on SIGTERM, then raises it again to exit by it; by then
    # this handler is back in place and turns it into an exit that runs the `finally` below,
    # which stops the embedded Redis rather than leaving it running unowned.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    server = None
    metrics_dir = None
    if args.workers > 1 and not os.environ.get(MULTIPROCESS_ENV):
        # Each worker writes its metrics here, and /metrics in any worker adds them up.
        metrics_dir = tempfile.mkdtemp(prefix="shortener-metrics-")
        os.environ[MULTIPROCESS_ENV] = metrics_dir
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
            access_log=False,
            log_config=log_config(),
        )
    finally:
        if server is not None:
            server.stop()
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


async def _inspect(settings: Settings, code: str, as_json: bool) -> int:
    async with open_runtime(settings) as runtime:
        shortener = await runtime.shortener()
        report = await shortener.describe(code)
    now = time.time()
    info = None if report is None else link_info(report, settings.base_url, now)
    if info is None:
        status = "unknown" if report is None else "expired"
        if as_json:
            print(json.dumps({"code": code, "status": status}))
        elif report is None:
            print(f"{code}: unknown (this service never issued it)")
        else:
            print(f"{code}: expired (issued, and its record is no longer kept)")
        return 1
    if as_json:
        print(info.model_dump_json(indent=2))
        return 0 if info.status == "active" else 1
    days = info.ttl_seconds / 86_400
    expiry = f"in {days:.1f} days" if info.status == "active" else "expired"
    assert report is not None and report.link is not None
    rows = [
        ("code", info.code),
        ("short url", info.short_url),
        ("target", info.url),
        ("org", report.link.org),
        ("tracked", "yes" if info.tracked else "no"),
        ("status", info.status),
        ("created", _when(info.created_at)),
        ("expires", f"{_when(info.expires_at)} ({expiry})"),
        ("clicks", f"{info.clicks} (bots and previews: {info.bot_clicks})"),
    ]
    for label, value in rows:
        print(f"{label:<10} {value}")
    return 0 if info.status == "active" else 1


async def _expiring(settings: Settings, within: int, as_json: bool) -> int:
    async with open_runtime(settings) as runtime:
        shortener = await runtime.shortener()
        per_org = await shortener.expiring(within)
    total = sum(per_org.values())
    if as_json:
        print(json.dumps({"within_seconds": within, "total": total, "orgs": per_org}))
        return 0
    print(f"codes expiring within {within // 86_400}d {within % 86_400 // 3600}h: {total}")
    for org, count in sorted(per_org.items(), key=lambda item: (-item[1], item[0])):
        print(f"  {org:<24} {count}")
    return 0


def _duration(text: str) -> int:
    match = _DURATION.fullmatch(text.strip().lower())
    amount = None if match is None else whole_number(match.group(1), max_digits=9)
    if match is None or amount is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 7d, 12h, 30m or 90s")
    return amount * _UNIT_SECONDS[match.group(2)]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shortener", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    inspect = commands.add_parser(
        "inspect", help="show one short code's target, expiry and clicks (exit 1: not active)"
    )
    inspect.add_argument("code")
    inspect.add_argument("--json", action="store_true", help="print the fields as JSON")
    expiring = commands.add_parser("expiring", help="count codes per org expiring soon")
    expiring.add_argument(
        "--within", type=_duration, default=7 * 86_400, help="e.g. 7d (default), 12h, 30m"
    )
    expiring.add_argument("--json", action="store_true", help="print the counts as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = with_credentials(load_settings(), announce=args.command == "serve")
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
    try:
        if args.command == "inspect":
            return asyncio.run(_inspect(settings, args.code, args.json))
        return asyncio.run(_expiring(settings, args.within, args.json))
    except StoreUnavailable as error:
        print(f"shortener: the store does not answer: {error}", file=sys.stderr)
        return 3
