"""The known top-level domains: a host name is only part of a link when it ends in one.

The list lives in `shortener/text/data/tlds.txt`: one TLD a line, lowercase, internationalised
TLDs in their unicode form, `#` starts a comment. Rebuild it with

    python -m shortener.text.tlds tlds-alpha-by-domain.txt [more lists...]

from IANA's list of the root zone (https://data.iana.org/TLD/tlds-alpha-by-domain.txt) and any
other file in the same shape, e.g. the current `shortener/text/data/tlds.txt` to keep its entries.
The command reads only the files it is given; it never goes to the network.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import idna

__all__ = ["DATA_FILE", "TldFileError", "load_tlds", "main", "parse_tlds", "render_tlds"]

DATA_FILE = Path(__file__).resolve().parent / "data" / "tlds.txt"

_TITLE = "# Top-level domains: one a line, lowercase, internationalised ones in unicode form."
_SOURCE_PREFIX = "#   - "
_BLURB = (
    "# A host name is only taken for part of a link when it ends in one of these.",
    "# Sources, each with its own first comment line where it has one:",
)
_REFRESH = (
    "# Refresh: download https://data.iana.org/TLD/tlds-alpha-by-domain.txt, then run",
    "#   python -m shortener.text.tlds tlds-alpha-by-domain.txt shortener/text/data/tlds.txt",
    "# Naming this file as a source too keeps its entries, among them TLDs since withdrawn from",
    "# the root zone that twitter-text's conformance data still expects to be recognised.",
)


class TldFileError(ValueError):
    """A line of a TLD list that is not a top-level domain."""


def _normalise(name: str) -> str:
    lowered = name.lower()
    if lowered.startswith("xn--"):
        try:
            lowered = idna.decode(lowered)
        except idna.IDNAError as error:
            raise TldFileError(f"{name!r} is not valid punycode: {error}") from error
    # A TLD is a single label: anything else on the line is a sign of a wrong file.
    if not lowered or any(char in lowered for char in ".:/@ \t") or "\\" in lowered:
        raise TldFileError(f"{name!r} is not a top-level domain")
    return lowered


def parse_tlds(lines: Iterable[str], source: str = "<lines>") -> set[str]:
    """The TLDs listed in `lines`, normalised as stored; raises TldFileError naming the line."""
    found: set[str] = set()
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            found.add(_normalise(line))
        except TldFileError as error:
            raise TldFileError(f"{source}:{number}: {error}") from None
    return found


def load_tlds(path: Path = DATA_FILE) -> frozenset[str]:
    with path.open(encoding="utf-8") as lines:
        return frozenset(parse_tlds(lines, str(path)))


def _provenance(name: str, text: str) -> list[str]:
    lines = text.splitlines()
    if lines and lines[0] == _TITLE:
        # A list written by this module: carry its own sources forward.
        return [line[len(_SOURCE_PREFIX) :] for line in lines if line.startswith(_SOURCE_PREFIX)]
    comment = next((line.lstrip("#").strip() for line in lines if line.startswith("#")), "")
    return [f"{name}: {comment}" if comment else name]


def render_tlds(tlds: Iterable[str], sources: Sequence[str]) -> str:
    header = [_TITLE, *_BLURB]
    header += [_SOURCE_PREFIX + source for source in dict.fromkeys(sources)]
    header += _REFRESH
    return "\n".join([*header, *sorted(set(tlds))]) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shortener.text.tlds",
        description="Rebuild the list of known top-level domains from local files in IANA's "
        "tlds-alpha-by-domain.txt format (punycode is converted to unicode).",
    )
    parser.add_argument("sources", nargs="+", type=Path, metavar="FILE", help="TLD list to read")
    parser.add_argument(
        "-o", "--output", type=Path, default=DATA_FILE, help=f"where to write (default {DATA_FILE})"
    )
    args = parser.parse_args(argv)
    tlds: set[str] = set()
    provenance: list[str] = []
    # Everything is read before anything is written, so the output may also be a source.
    for source in args.sources:
        try:
            text = source.read_text(encoding="utf-8")
            tlds |= parse_tlds(text.splitlines(), str(source))
        except (OSError, UnicodeDecodeError, TldFileError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        provenance += _provenance(source.name, text)
    if not tlds:
        print("error: the sources list no TLDs", file=sys.stderr)
        return 1
    args.output.write_text(render_tlds(tlds, provenance), encoding="utf-8")
    print(f"wrote {len(tlds)} TLDs to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
