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
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from shortener import delivery_process, metrics
from shortener.config import (
    BASE_URL_ENV,
    DEFAULT_HOST,
    DEFAULT_PORT,
    ENV_PREFIX,
    Settings,
    SettingsError,
    is_wildcard,
    load_settings,
)
from shortener.credentials import with_credentials
from shortener.domain.org_keys import UnknownKey
from shortener.domain.tenancy import DomainTaken, InvalidOrgId, OrgChanges, OrgList
from shortener.http.dashboard.rendering import PREFIX as DASHBOARD
from shortener.http.observability import log_config
from shortener.metrics import MULTIPROCESS_ENV
from shortener.model import StoreUnavailable
from shortener.runtime import open_runtime
from shortener.store import embedded
from shortener.text.parsing import whole_number

_DURATION = re.compile(r"([^a-z]*)([a-z]*)")
_UNIT_SECONDS = {"w": 604_800, "d": 86_400, "h": 3600, "m": 60, "s": 1}
_DURATION_EXAMPLES = "90m, 36h, 7d or 2w"
_EXPIRING_DEFAULT_SECONDS = 7 * 86_400


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from shortener.http.server import BoundedHttpProtocol

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
    deliverers: list[delivery_process.Process] = []
    if settings.webhook_delivery:
        # Delivery processes deliver for all workers, at a lower priority than theirs; the
        # workers, which read the same environment, leave deliveries to them.
        if metrics_dir is None:
            # The one worker runs here and keeps its metrics in memory; the delivery processes
            # write their own to files, which that worker adds to /metrics.
            metrics_dir = tempfile.mkdtemp(prefix="shortener-metrics-")
            metrics.delivery_metrics_dir = metrics_dir
        deliverers = delivery_process.start(log_config(), metrics_dir)
        os.environ[f"{ENV_PREFIX}WEBHOOK_DELIVERY"] = "0"
    try:
        uvicorn.run(
            "shortener.http.app:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            loop="uvloop",
            http=BoundedHttpProtocol,
            timeout_keep_alive=settings.keep_alive_timeout_seconds,
            # uvicorn counts the connection being refused among those served: one more
            # than max_connections lets exactly max_connections be served.
            limit_concurrency=settings.max_connections + 1,
            # uvicorn believes X-Forwarded-For from loopback by default; the app decides
            # itself whom to believe (trusted_proxies, see `clients.ClientAddresses`).
            proxy_headers=False,
            server_header=False,
            access_log=False,
            log_config=log_config(),
        )
    finally:
        delivery_process.stop(deliverers)
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
        lookup = (await runtime.services()).lookup
        found = await lookup.link_info(code)
    if found is None:
        status = "expired" if lookup.issued(code) else "unknown"
        if as_json:
            print(json.dumps({"code": code, "status": status}))
        elif status == "unknown":
            print(f"{code}: unknown (this service never issued it)")
        else:
            print(f"{code}: expired (issued, and its record is no longer kept)")
        return 1
    org, info = found
    if as_json:
        print(info.model_dump_json(indent=2))
        return 0 if info.status == "active" else 1
    days = info.ttl_seconds / 86_400
    expiry = f"in {days:.1f} days" if info.ttl_seconds > 0 else "expired"
    taps = "opens" if info.kind == "pixel" else "clicks"
    rows = [
        ("id", info.link_id),
        ("kind", info.kind),
        ("short url", info.short_url or "none (no short code: an e-mail's link or pixel)"),
        ("target", info.url or "none (an open pixel)"),
        ("org", org),
        ("tracked", "yes" if info.tracked else "no"),
        ("campaign", info.campaign or "none"),
        ("message", info.message_id or "none"),
        ("status", info.status),
        ("created", _when(info.created_at)),
        ("expires", f"{_when(info.expires_at)} ({expiry})"),
        (taps, f"{info.clicks} (bots and previews: {info.bot_clicks})"),
    ]
    if info.disabled_at is not None:
        rows.append(
            ("disabled", f"{_when(info.disabled_at)}: {info.disabled_reason or 'no reason'}")
        )
    for label, value in rows:
        print(f"{label:<10} {value}")
    return 0 if info.status == "active" else 1


async def _expiring(settings: Settings, within: int, as_json: bool) -> int:
    async with open_runtime(settings) as runtime:
        per_org = await (await runtime.services()).lookup.expiring(within)
    total = sum(per_org.values())
    if as_json:
        print(json.dumps({"within_seconds": within, "total": total, "orgs": per_org}))
        return 0
    print(f"codes expiring within {_describe(within)}: {total}")
    for org, count in sorted(per_org.items(), key=lambda item: (-item[1], item[0])):
        print(f"  {org:<24} {count}")
    return 0


async def _orgs_set(settings: Settings, args: argparse.Namespace) -> int:
    given = {
        "domains": args.domain,
        "allowed_destinations": args.allow,
        "blocked_destinations": args.block,
        "fallback_url": args.fallback_url,
    }
    try:
        changes = OrgChanges(**{name: value for name, value in given.items() if value is not None})
    except ValidationError as error:
        for problem in error.errors(include_url=False, include_input=False):
            where = ".".join(str(part) for part in problem["loc"])
            print(f"shortener: {where}: {problem['msg']}", file=sys.stderr)
        return 2
    async with open_runtime(settings) as runtime:
        tenancy = (await runtime.services()).tenancy
        try:
            org = await tenancy.put(args.org, changes)
        except (InvalidOrgId, DomainTaken) as error:
            print(f"shortener: {error}", file=sys.stderr)
            return 1
    print(org.model_dump_json(indent=2))
    return 0


async def _orgs_list(settings: Settings, as_json: bool) -> int:
    async with open_runtime(settings) as runtime:
        orgs = await (await runtime.services()).tenancy.all()
    if as_json:
        print(OrgList(orgs=orgs).model_dump_json(indent=2))
        return 0
    for org in orgs:
        print(f"{org.org:<24} {' '.join(org.domains) or '-'}")
    return 0


async def _keys_create(settings: Settings, org: str) -> int:
    async with open_runtime(settings) as runtime:
        services = await runtime.services()
        if await services.tenancy.get(org) is None:
            print(f"shortener: no org {org!r} is known", file=sys.stderr)
            return 1
        made = await services.org_keys.create(org)
    print(f"key_id  {made.key_id}\nkey     {made.key}\n(the key is shown only this once)")
    return 0


async def _keys_revoke(settings: Settings, org: str, key_id: str) -> int:
    async with open_runtime(settings) as runtime:
        try:
            await (await runtime.services()).org_keys.revoke(org, key_id)
        except UnknownKey as error:
            print(f"shortener: {error}", file=sys.stderr)
            return 1
    print(f"revoked {key_id}")
    return 0


def _duration(text: str) -> int:
    match = _DURATION.fullmatch(text.strip().lower())
    amount = None if match is None else whole_number(match.group(1), max_digits=9)
    if match is not None and amount is not None and not match.group(2):
        raise argparse.ArgumentTypeError(
            f"{text!r} has no unit: say {amount}m, {amount}h, {amount}d or {amount}w"
        )
    if match is None or amount is None or match.group(2) not in _UNIT_SECONDS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like {_DURATION_EXAMPLES}")
    seconds = amount * _UNIT_SECONDS[match.group(2)]
    if seconds == 0:
        raise argparse.ArgumentTypeError("the duration must be longer than 0")
    return seconds


def _describe(seconds: int) -> str:
    """A duration in days and smaller units: 90m -> 1h30m, 365d -> 365d."""
    parts = []
    for unit in "dhms":
        count, seconds = divmod(seconds, _UNIT_SECONDS[unit])
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def _count_from_one(text: str) -> int:
    number = whole_number(text, max_digits=6)
    if number is None or number < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1")
    return number


def _port(text: str) -> int:
    number = whole_number(text, max_digits=5)
    if number is None or not 1 <= number <= 65_535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (1 to 65535)")
    return number


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shortener", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="run the HTTP service",
        description=(
            "Run the HTTP service. Short links start with SHORTENER_BASE_URL (or base_url in "
            "the SHORTENER_CONFIG file) when set, else with http://HOST:PORT of --host and "
            "--port; on 0.0.0.0 or :: that is http://127.0.0.1:PORT, which phones cannot "
            "reach, so set SHORTENER_BASE_URL there."
        ),
    )
    serve.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help="IP address or host name to listen on; 0.0.0.0 or :: for every interface "
        "(default: %(default)s)",
    )
    serve.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        help="TCP port to listen on (default: %(default)s)",
    )
    serve.add_argument(
        "--workers",
        type=_count_from_one,
        default=1,
        help="number of worker processes; they share one store and add up their metrics "
        "(default: %(default)s)",
    )
    inspect = commands.add_parser(
        "inspect",
        help="show a short code's (or a tracked link's or pixel's) target, expiry and clicks "
        "(exit 1: not active)",
        description="Show a short code's (or a tracked link's or pixel's) target, org, expiry "
        "and clicks, read from the store. Exit status 0: active; 1: expired or unknown; 3: the "
        "store does not answer.",
    )
    inspect.add_argument(
        "code",
        help="a short code (the last path segment of a short link), or the id of a tracked "
        "link or pixel",
    )
    inspect.add_argument(
        "--json",
        action="store_true",
        help="print the fields of GET /v1/links/{code} as JSON instead of a table",
    )
    expiring = commands.add_parser(
        "expiring",
        help="count per org the codes that are still active and expire soon",
        description="Count per org the codes that are still active and expire within a "
        "duration. Counted in whole minutes from the next one: a code that expires within "
        "the current minute is left out.",
    )
    expiring.add_argument(
        "--within",
        type=_duration,
        metavar="DURATION",
        help=f"how far ahead to look: a whole number with a unit, s (seconds), m (minutes), "
        f"h (hours), d (days) or w (weeks), e.g. {_DURATION_EXAMPLES}; counted in whole "
        "minutes, rounded up; at most the links' lifetime (link_ttl_seconds) (default: "
        f"{_describe(_EXPIRING_DEFAULT_SECONDS)}, or the links' lifetime when that is shorter)",
    )
    expiring.add_argument(
        "--json",
        action="store_true",
        help='print {"within_seconds", "total", "orgs": {ORG: COUNT}} as JSON instead of a table',
    )
    _org_commands(commands)
    return parser


def _org_commands(commands: Any) -> None:
    orgs = commands.add_parser("orgs", help="add, change and list orgs").add_subparsers(
        dest="orgs_command", required=True, help="set: add or change an org; list: the orgs"
    )
    set_org = orgs.add_parser(
        "set",
        help="add an org or change it; an option left out keeps its value",
        description="Add an org or change it, as PUT /v1/admin/orgs/ORG does: an option "
        "given replaces that setting, one left out keeps its value. Exit status 1: a domain "
        "belongs to another org (nothing changed).",
    )
    set_org.add_argument("org", help="the org's name: 1 to 64 of A-Z a-z 0-9 . _ -")
    set_org.add_argument(
        "--domain",
        action="append",
        metavar="D",
        help="a branded domain (repeat for more; the first is the one links use)",
    )
    set_org.add_argument(
        "--allow", action="append", metavar="P", help="a host pattern links may lead to"
    )
    set_org.add_argument(
        "--block", action="append", metavar="P", help="a host pattern links may not lead to"
    )
    set_org.add_argument("--fallback-url", metavar="URL", help="where dead codes redirect")
    list_orgs = orgs.add_parser("list", help="list the orgs and their domains")
    list_orgs.add_argument("--json", action="store_true", help='print {"orgs": [...]} as JSON')
    keys = commands.add_parser("keys", help="make and revoke org API keys").add_subparsers(
        dest="keys_command", required=True, help="create: make a key; revoke: revoke one"
    )
    create = keys.add_parser("create", help="make an API key for an org and show it once")
    create.add_argument("org", help="the org the key acts for")
    revoke = keys.add_parser("revoke", help="revoke an org's API key (exit 1: no such key)")
    revoke.add_argument("org", help="the org the key acts for")
    revoke.add_argument("key_id", help="the key's id, as `keys create` printed it")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    serving = args.command == "serve"
    try:
        configured = with_credentials(load_settings(), announce=serving)
        settings = configured.listening_on(args.host, args.port) if serving else configured
    except SettingsError as error:
        print(f"shortener: {error}", file=sys.stderr)
        return 2
    if serving:
        if not configured.base_url_is_set and is_wildcard(args.host):
            print(
                f"shortener: listening on every interface ({args.host}), so short links name "
                f"{settings.base_url}, which only this machine can open: set {BASE_URL_ENV} "
                "to the address recipients tap",
                file=sys.stderr,
                flush=True,
            )
        print(f"Short links start with {settings.base_url}/", flush=True)
        print(
            f"Dashboard at {settings.base_url}{DASHBOARD} (sign in with an org's API key or an "
            "admin key)",
            flush=True,
        )
        # The workers read the settings again: pin what was resolved here so that they agree.
        os.environ.setdefault("SHORTENER_DATA_DIR", str(settings.data_dir.resolve()))
        os.environ[BASE_URL_ENV] = settings.base_url
        return _serve(settings, args)
    try:
        if args.command == "inspect":
            return asyncio.run(_inspect(settings, args.code, args.json))
        if args.command == "orgs" and args.orgs_command == "set":
            return asyncio.run(_orgs_set(settings, args))
        if args.command == "orgs":
            return asyncio.run(_orgs_list(settings, args.json))
        if args.command == "keys" and args.keys_command == "create":
            return asyncio.run(_keys_create(settings, args.org))
        if args.command == "keys":
            return asyncio.run(_keys_revoke(settings, args.org, args.key_id))
        longest = settings.link_ttl_seconds
        within = min(_EXPIRING_DEFAULT_SECONDS, longest) if args.within is None else args.within
        if within > longest:
            print(
                f"shortener: --within {_describe(within)} is longer than a code lives: at most "
                f"{_describe(longest)} (link_ttl_seconds)",
                file=sys.stderr,
            )
            return 2
        return asyncio.run(_expiring(settings, within, args.json))
    except StoreUnavailable as error:
        print(f"shortener: the store does not answer: {error}", file=sys.stderr)
        return 3
