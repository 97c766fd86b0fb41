"""Finding and rewriting `<a href>` links in an e-mail's HTML without re-serialising it.

The markup is scanned, not parsed into a tree: every byte that is not a rewritten `href`
value (or the inserted pixel) comes back exactly as it was sent.

The scan follows HTML's tokenizer, so that it sees the tags a mail client sees and nothing
else: attribute values, comments, `<![CDATA[...]]>` sections, other declarations and the
contents of raw-text elements (`<script>`, `<style>`, `<textarea>`, `<title>`, ...) are not
markup. CDATA sections are the one departure: HTML reads them as bogus comments that end at the
first `>`, XHTML and Python's HTMLParser at `]]>`; the longer reading is taken, so that no link
is rewritten that either reading hides.

Every step moves forward and no pattern can backtrack, so a scan takes time linear in the
length of the markup, whatever it holds.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass

_TAG_NAME_REST = re.compile(r"[^\t\n\f\r />]*")
# Between attributes: a "/" not followed by ">" is a parse error that HTML skips like a space.
_ATTRIBUTE_GAP = re.compile(r"[\t\n\f\r /]*")
# An attribute name may start with "=" (a parse error HTML reads as part of the name).
_ATTRIBUTE_NAME = re.compile(r"[^\t\n\f\r />][^\t\n\f\r />=]*")
_SPACES = re.compile(r"[\t\n\f\r ]*")
_UNQUOTED_VALUE = re.compile(r"[^\t\n\f\r >]*")
_COMMENT_END = re.compile(r"--!?>")
_CDATA_START = "<![CDATA["
_CDATA_END = "]]>"
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

# Elements whose content is text up to their own end tag (RCDATA and RAWTEXT in HTML).
# `<noscript>` is markup in mail clients, which run no scripts.
_RAW_TEXT_ELEMENTS = (
    "script",
    "style",
    "textarea",
    "title",
    "xmp",
    "iframe",
    "noembed",
    "noframes",
)
_RAW_TEXT_END = {
    name: re.compile(rf"</{name}[\t\n\f\r />]", re.IGNORECASE | re.ASCII)
    for name in _RAW_TEXT_ELEMENTS
    if name != "script"
}
# A script ends at `</script`, except inside what HTML calls its escaped text: after `<!--`,
# a nested `<script` hides the next `</script` (it then ends that nested one), up to `-->`.
_SCRIPT_TEXT = re.compile(r"<!--|</script[\t\n\f\r />]", re.IGNORECASE | re.ASCII)
_SCRIPT_ESCAPED = re.compile(r"-->|<(/?)script[\t\n\f\r />]", re.IGNORECASE | re.ASCII)
_SCRIPT_DOUBLE_ESCAPED = re.compile(r"-->|</script[\t\n\f\r />]", re.IGNORECASE | re.ASCII)
# Everything after `<plaintext>` is text.
_PLAINTEXT = "plaintext"

# The rest of a tag after its "<" or "</", when its attributes are all of the plain kinds: a
# name not starting with a quote, "=" or "<"; a quoted value; an unquoted one not starting with
# one of those. Read as HTML reads it, and possessive throughout: it never backtracks.
_PLAIN_TAG_REST = (
    r"[A-Za-z][^\t\n\f\r />]*+"
    r"(?:[\t\n\f\r /]++"
    r"|[^\t\n\f\r />=\"'<][^\t\n\f\r />=]*+"
    r"(?:[\t\n\f\r ]*+=[\t\n\f\r ]*+"
    r"(?:\"[^\"]*+\"|'[^']*+'|[^\t\n\f\r >=\"'<`][^\t\n\f\r >]*+))?+"
    r")*+>"
)

# One attribute of the plain kinds, with what precedes it; never followed by an "=" that would
# make it something else. Where it does not match, the attribute is read step by step.
_PLAIN_ATTRIBUTE = re.compile(
    r"[\t\n\f\r /]*+(?P<name>[^\t\n\f\r />=\"'<][^\t\n\f\r />=]*+)"
    r"(?:[\t\n\f\r ]*+=[\t\n\f\r ]*+"
    r"(?P<value>\"[^\"]*+\"|'[^']*+'|[^\t\n\f\r >=\"'<`][^\t\n\f\r >]*+))?+"
    r"(?![\t\n\f\r ]*+=)"
)


def _skipping(*names: str) -> re.Pattern[str]:
    """What passes over text and plain tags in one go, but for start tags named `names` and
    the end tags of body and document. The scan reads everything else step by step."""
    return re.compile(
        r"(?:[^<]++"
        rf"|<(?!(?:{'|'.join(names)})[\t\n\f\r />]){_PLAIN_TAG_REST}"
        rf"|</(?!(?:body|html)[\t\n\f\r />]){_PLAIN_TAG_REST}"
        r")*+",
        re.IGNORECASE | re.ASCII,
    )


# Finding anchors stops at them; placing the pixel passes over them too.
_SKIPPING_ALL_BUT_ANCHORS = _skipping("a", *_RAW_TEXT_ELEMENTS, _PLAINTEXT)
_SKIPPING_ANCHORS_TOO = _skipping(*_RAW_TEXT_ELEMENTS, _PLAINTEXT)

_HTTP = re.compile(r"https?://", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Anchor:
    """An `<a href>`: `markup[start:end]` is the raw attribute value."""

    start: int
    end: int
    raw: str
    url: str
    opted_out: bool

    @property
    def is_web_link(self) -> bool:
        return bool(_HTTP.match(self.url))


@dataclass(frozen=True, slots=True)
class _Tag:
    """A start or end tag: `markup[start:end]` from its `<` to its `>`."""

    start: int
    end: int
    name: str
    closing: bool
    # (lowercased name, value start, value end), the first of each name only, as in HTML;
    # (name, -1, -1) for an attribute without a value. Kept for anchors only.
    attributes: tuple[tuple[str, int, int], ...]


@dataclass(frozen=True, slots=True)
class _End:
    """Where the markup ends for the tokenizer: at `at` it is reading text, and from there on
    only the start of a construct that the markup never closes (or nothing) follows."""

    at: int


def _ascii_lower(text: str) -> str:
    return text.translate(_ASCII_LOWER)


def _past(pattern: re.Pattern[str], markup: str, position: int) -> int:
    """Where the run that `pattern` (which may match nothing) matches at `position` ends."""
    found = pattern.match(markup, position)
    return position if found is None else found.end()


def _attributes(
    markup: str, position: int, keep: bool
) -> tuple[int, tuple[tuple[str, int, int], ...]]:
    """Reads a tag's attributes from `position` (just after its name) to its closing `>`.
    Returns where the tag ends (after the `>`, or -1 if the markup ends first) and, if `keep`,
    the attributes."""
    found: dict[str, tuple[int, int]] = {}
    length = len(markup)
    while True:
        plain = _PLAIN_ATTRIBUTE.match(markup, position)
        if plain is not None:
            position = plain.end()
            if keep:
                start, end = plain.span("value")
                if start >= 0 and markup[start] in "\"'":
                    start, end = start + 1, end - 1
                found.setdefault(_ascii_lower(plain.group("name")), (start, end))
            continue
        position = _past(_ATTRIBUTE_GAP, markup, position)
        if position >= length:
            return -1, ()
        if markup[position] == ">":
            break
        name_start = position
        # The gap stops before a name's first character.
        name_end = _past(_ATTRIBUTE_NAME, markup, position)
        position = _past(_SPACES, markup, name_end)
        value = (-1, -1)
        if position < length and markup[position] == "=":
            position = _past(_SPACES, markup, position + 1)
            if position >= length:
                return -1, ()
            quote = markup[position]
            if quote in "\"'":
                close = markup.find(quote, position + 1)
                if close < 0:
                    return -1, ()
                value = (position + 1, close)
                position = close + 1
            else:
                # Unquoted, or empty when the tag ends right after the "=".
                end = _past(_UNQUOTED_VALUE, markup, position)
                value = (position, end)
                position = end
        if keep:
            found.setdefault(_ascii_lower(markup[name_start:name_end]), value)
    attributes = tuple((name, start, end) for name, (start, end) in found.items())
    return position + 1, attributes


def _tag(markup: str, start: int, closing: bool) -> _Tag | None:
    """The tag whose `<` is at `start` and whose name starts with an ASCII letter; None if the
    markup ends inside it."""
    name_start = start + 2 if closing else start + 1
    name_end = _past(_TAG_NAME_REST, markup, name_start + 1)
    name = _ascii_lower(markup[name_start:name_end])
    end, attributes = _attributes(markup, name_end, keep=name == "a" and not closing)
    if end < 0:
        return None
    return _Tag(start, end, name, closing, attributes)


def _script_end(markup: str, position: int) -> re.Match[str] | None:
    """The `</script` that ends a script whose text starts at `position`."""
    pattern = _SCRIPT_TEXT
    while (found := pattern.search(markup, position)) is not None:
        matched = found.group()
        if pattern is _SCRIPT_TEXT:
            if matched != "<!--":
                return found
            # The dashes of "<!--" may close it at once ("<!-->").
            pattern, position = _SCRIPT_ESCAPED, found.start() + 2
        elif matched == "-->":
            pattern, position = _SCRIPT_TEXT, found.end()
        elif pattern is _SCRIPT_DOUBLE_ESCAPED:
            pattern, position = _SCRIPT_ESCAPED, found.end()
        elif found.group(1):
            return found
        else:
            pattern, position = _SCRIPT_DOUBLE_ESCAPED, found.end()
    return None


def _raw_text_end(markup: str, tag: _Tag) -> _Tag | None:
    """The end tag that closes raw-text element `tag`; None if the markup ends first."""
    if tag.name == "script":
        found = _script_end(markup, tag.end)
    else:
        found = _RAW_TEXT_END[tag.name].search(markup, tag.end)
    if found is None:
        return None
    # The end tag goes on like any other, attributes and all, from the character after
    # its name.
    end, _ = _attributes(markup, found.end() - 1, keep=False)
    return None if end < 0 else _Tag(found.start(), end, tag.name, True, ())


def _is_ascii_letter(char: str) -> bool:
    return char.isascii() and char.isalpha()


def _scan(markup: str, skipping: re.Pattern[str]) -> Iterator[_Tag | _End]:
    """The tags of `markup` that `skipping` does not pass over, in order, then where the markup
    ends for the tokenizer."""
    length = len(markup)
    position = 0
    while True:
        # It stops at a "<" or at the end.
        start = _past(skipping, markup, position)
        if start + 1 >= length:
            yield _End(length)
            return
        following = markup[start + 1]
        if _is_ascii_letter(following):
            tag = _tag(markup, start, closing=False)
            if tag is None or tag.name == _PLAINTEXT:
                yield _End(start)
                return
            yield tag
            position = tag.end
            if tag.name == "script" or tag.name in _RAW_TEXT_END:
                end_tag = _raw_text_end(markup, tag)
                if end_tag is None:
                    yield _End(start)
                    return
                yield end_tag
                position = end_tag.end
            continue
        if following == "/":
            if start + 2 >= length:
                # "</" at the very end is text, but would open a bogus comment with whatever
                # came after it.
                yield _End(start)
                return
            if _is_ascii_letter(markup[start + 2]):
                tag = _tag(markup, start, closing=True)
                if tag is None:
                    yield _End(start)
                    return
                yield tag
                position = tag.end
                continue
            if markup[start + 2] == ">":
                # "</>" is dropped.
                position = start + 3
                continue
            close = markup.find(">", start + 2)
        elif following == "!":
            if markup.startswith("<!--", start):
                close = _comment_end(markup, start + 4)
            elif _ascii_lower(markup[start : start + len(_CDATA_START)]) == "<![cdata[":
                close = markup.find(_CDATA_END, start + len(_CDATA_START))
                if close >= 0:
                    close += len(_CDATA_END) - 1
            else:
                close = markup.find(">", start + 2)
        elif following == "?":
            close = markup.find(">", start + 2)
        else:
            position = start + 1
            continue
        # A comment, a declaration or a bogus comment, up to and including `markup[close]`.
        if close < 0:
            yield _End(start)
            return
        position = close + 1


def _comment_end(markup: str, position: int) -> int:
    """Where the comment whose text starts at `position` ends (its `>`), or -1."""
    if markup.startswith(">", position):
        return position
    if markup.startswith("->", position):
        return position + 1
    found = _COMMENT_END.search(markup, position)
    return -1 if found is None else found.end() - 1


def find_anchors(markup: str) -> list[Anchor]:
    anchors = []
    for tag in _scan(markup, _SKIPPING_ALL_BUT_ANCHORS):
        if not isinstance(tag, _Tag) or tag.name != "a" or tag.closing:
            continue
        attributes = {name: (start, end) for name, start, end in tag.attributes}
        # An href without a value makes an empty link; a later href would not count either.
        start, end = attributes.get("href", (-1, -1))
        if start < 0:
            continue
        opted_out = False
        tracking_start, tracking_end = attributes.get("data-tracking", (-1, -1))
        if tracking_start >= 0:
            tracking = markup[tracking_start:tracking_end]
            opted_out = html.unescape(tracking).strip().lower() == "false"
        raw = markup[start:end]
        anchors.append(Anchor(start, end, raw, html.unescape(raw).strip(), opted_out))
    return anchors


def _pixel_position(markup: str) -> int:
    """Just before the last `</body>` tag, else the last `</html>` tag, else where the markup
    ends, as the tokenizer reads it: never inside a tag, comment or raw text."""
    body_end: int | None = None
    html_end: int | None = None
    end = len(markup)
    for tag in _scan(markup, _SKIPPING_ANCHORS_TOO):
        if isinstance(tag, _End):
            end = tag.at
        elif tag.closing and tag.name == "body":
            body_end = tag.start
        elif tag.closing and tag.name == "html":
            html_end = tag.start
    if body_end is not None:
        return body_end
    return end if html_end is None else html_end


def rewrite(markup: str, replacements: list[tuple[Anchor, str]], pixel: str | None) -> str:
    """Replace the href values of the given anchors and insert `pixel` before the last
    `</body>` tag, else the last `</html>` tag, else at the end (but before a comment, tag or
    raw-text element that the markup leaves open there)."""
    edits = [
        (anchor.start, anchor.end, html.escape(url, quote=True)) for anchor, url in replacements
    ]
    if pixel is not None:
        at = _pixel_position(markup)
        edits.append((at, at, pixel))
    pieces: list[str] = []
    position = 0
    for start, end, text in sorted(edits, key=lambda edit: edit[0]):
        pieces += (markup[position:start], text)
        position = end
    pieces.append(markup[position:])
    return "".join(pieces)


def honeypot_tag(url: str) -> str:
    """A link no person sees or reaches: not rendered, hidden from assistive technology, not
    focusable, with no text. Whatever fetches it reads the markup, not the page."""
    return (
        f'<a href="{html.escape(url, quote=True)}" style="display:none" aria-hidden="true" '
        'tabindex="-1"></a>'
    )


def pixel_tag(url: str) -> str:
    return (
        f'<img src="{html.escape(url, quote=True)}" width="1" height="1" alt="" '
        'style="display:block;width:1px;height:1px;border:0;opacity:0" aria-hidden="true">'
    )
