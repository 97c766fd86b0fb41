"""How honestly the service counts: the corpus of `tests/support/corpus.py` (people's and
machines' taps and opens) sent to `shortener serve`, and how many of each it counted as people.

It prints, per kind of sender, how many interactions were recorded and how many were counted
as a person's; then the share of people counted as people, and of machines not counted as
people.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from harness import HarnessError, redis_server, running_service

from tests.support.corpus import KINDS, MACHINES, PEOPLE, CorpusError, run_corpus


def share(part: int, whole: int) -> str:
    return f"{part} of {whole} ({100 * part / max(whole, 1):.1f}%)"


def report(found: dict[str, Counter[str]]) -> list[str]:
    lines = ["| sender | recorded | counted as people |", "| --- | ---: | ---: |"]
    totals = {PEOPLE: Counter[str](), MACHINES: Counter[str]()}
    for kind, counts in found.items():
        lines.append(f"| {kind} ({KINDS[kind]}) | {counts['recorded']} | {counts['people']} |")
        totals[KINDS[kind]].update(counts)
    people, machines = totals[PEOPLE], totals[MACHINES]
    caught = machines["recorded"] - machines["people"]
    lines += [
        "",
        f"people counted as people: {share(people['people'], people['recorded'])}",
        f"machines not counted as people: {share(caught, machines['recorded'])}",
    ]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--per-kind", type=int, default=20, help="messages per kind (20)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    directory = Path(tempfile.mkdtemp(prefix="shortener-bots-"))
    try:
        with (
            redis_server(directory / "redis") as (_, redis_url),
            running_service(
                redis_url, directory, "bots", settings={"trusted_proxies": "127.0.0.1"}
            ) as service,
        ):
            found = asyncio.run(
                run_corpus(service.base_url, service.api_key, args.per_kind, args.seed)
            )
    except (HarnessError, CorpusError) as error:
        print(f"bots: could not run: {error}", file=sys.stderr)
        return 2
    print("\n".join(report(found)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
