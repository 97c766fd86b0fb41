"""Finding and rewriting `<a href>` in e-mail HTML: only real anchors, as a tokenizer sees them,
every other byte unchanged, and the pixel where the body ends."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shortener.text import markup

PIXEL_URL = "https://sho.rt/api/orgs/o/o/PIXEL"
PIXEL = markup.pixel_tag(PIXEL_URL)

# Elements whose content is text up to their end tag. Python's HTMLParser knows only script
# and style; HTML5 (and browsers) also read these this way.
RAW_TEXT_ELEMENTS = ("script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes")


class Reference(HTMLParser):
    """What Python's HTMLParser sees: the first href of every `<a>` start tag, and every tag."""

    CDATA_CONTENT_ELEMENTS = RAW_TEXT_ELEMENTS

    def __init__(self, document: str) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []
        self.tags: list[tuple[str, str, list[tuple[str, str | None]]]] = []
        self.feed(document)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(("start", tag, attrs))
        if tag == "a":
            values = [value for name, value in attrs if name == "href"]
            # A first href without a value makes an empty link, which hides any later href.
            if values and values[0] is not None:
                self.hrefs.append(values[0])

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        self.tags.append(("end", tag, []))


def hrefs(document: str) -> list[str]:
    return [anchor.raw for anchor in markup.find_anchors(document)]


# (document, the raw href values of its real anchors)
ANCHOR_CASES = [
    ('<a href="https://a.example/">A</a>', ["https://a.example/"]),
    ("<A HREF='https://a.example/'>", ["https://a.example/"]),
    ("<a href=https://a.example/u>", ["https://a.example/u"]),
    ('<a\nhref = "https://a.example/"\n>', ["https://a.example/"]),
    ("<a/href=x>", ["x"]),
    ('<a class=x href="y">', ["y"]),
    ('<a title="x"href="y">', ["y"]),
    ("<a href=>", [""]),
    ('<a href="">', [""]),
    ('<a href="x" href="y">', ["x"]),
    ('<a href href="y">', []),
    ("<a href=x/>", ["x/"]),
    ("<a href='x'/>", ["x"]),
    ('<a href="a&amp;b">', ["a&amp;b"]),
    ("<abbr href=x><area href=y><a-b href=z>", []),
    ("<a<b href=x>", []),
    ("<a <b href=x>", ["x"]),
    # Text inside attribute values is not markup.
    ("<img alt=\"<a href='https://x.example/in-attr'>\">", []),
    ("<p title='<a href=\"https://x.example/\">' data-x=<a>", []),
    ('<a title="<a href=x>" href="y">', ["y"]),
    ('</p title="<a href=x>">', []),
    # Comments, CDATA and other declarations.
    ('<!-- <a href="x"> -->', []),
    ('<!-- x --> <a href="y">', ["y"]),
    ("<!--> <a href=x>", ["x"]),
    ("<!---> <a href=x>", ["x"]),
    ("<!-- --!> <a href=x>", ["x"]),
    ("<!-- -- > <a href=x> -->", []),
    ('<!-- <a href="x">', []),
    ("<![CDATA[ <a href=x> ]]><a href=y>", ["y"]),
    ("<![CDATA[ x > <a href=x> ]]>", []),
    ("<!DOCTYPE html><a href=x>", ["x"]),
    ("<?xml version='1.0'?><a href=x>", ["x"]),
    ("<! <a href=x>", []),
    ("<![if !mso]><a href=x><![endif]>", ["x"]),
    ("</ <a href=x>", []),
    ("</><a href=x>", ["x"]),
    # Raw text: only its own end tag ends it.
    ("<script>var a = '<a href=x>';</script><a href=y>", ["y"]),
    ("<SCRIPT type=x>'<a href=x>'</Script ><a href=y>", ["y"]),
    ("<script>'</scripts><a href=x>'</script>", []),
    ('<script>\'</script x=">"><a href=x>', ["x"]),
    ("<script><a href=x>", []),
    ("<style>a[href='x'] { }</style><a href=y>", ["y"]),
    ("<title>Sale <a href=x>x</a></title><a href=y>", ["y"]),
    ("<textarea><a href=x></textarea ><a href=y>", ["y"]),
    ("<xmp><a href=x></xmp><iframe><a href=y></iframe><a href=z>", ["z"]),
    ("<noembed><a href=x></noembed><noframes><a href=y></noframes>", []),
    ("<plaintext><a href=x></plaintext><a href=y>", []),
    ("<titles><a href=x></titles>", ["x"]),
    ("<noscript><a href=x></noscript>", ["x"]),
    # A comment inside a script hides what HTML calls a nested script.
    ("<script><!--<script></script><a href=x></script><a href=y>", ["y"]),
    ("<script><!-- --><a href=x></script><a href=y>", ["y"]),
    ("<script><!--</script><a href=x>", ["x"]),
    ("<script><!--><script></script><a href=x>", ["x"]),
    ("<script><!--<script>--></script><a href=x>", ["x"]),
    ("<script><!--<scripts></script><a href=x>", ["x"]),
    # Stray angle brackets are text.
    ("1 < 2 > 0 <a href=x>", ["x"]),
    ("<<a href=x>>", ["x"]),
    ("<", []),
    ("<a", []),
    ('<a href="x', []),
    ("<a href=x", []),
    ("&lt;a href=x&gt;", []),
]


@pytest.mark.parametrize(("document", "expected"), ANCHOR_CASES, ids=[c for c, _ in ANCHOR_CASES])
def test_anchors(document: str, expected: list[str]) -> None:
    assert hrefs(document) == expected


def test_anchor_offsets_and_urls() -> None:
    document = "<p><a class=c HREF = ' https://a.example/?a=1&amp;b=2 '>x</a>"
    (anchor,) = markup.find_anchors(document)
    assert document[anchor.start : anchor.end] == anchor.raw == " https://a.example/?a=1&amp;b=2 "
    assert anchor.url == "https://a.example/?a=1&b=2"
    assert anchor.is_web_link and not anchor.opted_out


@pytest.mark.parametrize(
    ("document", "opted_out"),
    [
        ('<a data-tracking="false" href=x>', True),
        ("<a href=x DATA-TRACKING=' False '>", True),
        ("<a href=x data-tracking=&#102;alse>", True),
        ('<a href=x data-tracking="true">', False),
        ('<a href=x data-tracking="true" data-tracking="false">', False),
        ('<a href=x title="data-tracking=false">', False),
        ("<a href=x data-tracking>", False),
    ],
)
def test_opting_out(document: str, opted_out: bool) -> None:
    (anchor,) = markup.find_anchors(document)
    assert anchor.opted_out is opted_out


# (document, the document with the pixel where it belongs, written as PIXEL)
PIXEL_CASES = [
    ("<body>x</body>", "<body>xPIXEL</body>"),
    ("<body>x</BODY >\n</html>", "<body>xPIXEL</BODY >\n</html>"),
    ("<body>x</body></body>y", "<body>x</body>PIXEL</body>y"),
    ('<body><p title="</body>">x</p></body>', '<body><p title="</body>">x</p>PIXEL</body>'),
    ('<body><p title="</body>">x</p>', '<body><p title="</body>">x</p>PIXEL'),
    ("<body><!-- </body> -->x", "<body><!-- </body> -->xPIXEL"),
    ("<body><script>'</body>'</script>x", "<body><script>'</body>'</script>xPIXEL"),
    ("<body><title></body></title>", "<body><title></body></title>PIXEL"),
    ("<body>x</html>", "<body>xPIXEL</html>"),
    ("<body>x</body></html>", "<body>xPIXEL</body></html>"),
    ("<html><body>x</body class='>'>", "<html><body>xPIXEL</body class='>'>"),
    ("<p>x", "<p>xPIXEL"),
    ("", "PIXEL"),
    ("x <", "x <PIXEL"),
    ("x </", "x PIXEL</"),
    # A document that ends inside a comment, tag or raw text gets the pixel before it.
    ("<body>x<!-- </body>", "<body>xPIXEL<!-- </body>"),
    ('<body>x<p title="</body>', '<body>xPIXEL<p title="</body>'),
    ("<body>x<script>'</body>'", "<body>xPIXEL<script>'</body>'"),
    ("<body>x<![CDATA[</body>", "<body>xPIXEL<![CDATA[</body>"),
    ("<body>x</p", "<body>xPIXEL</p"),
    ("<body>x<plaintext></body>", "<body>xPIXEL<plaintext></body>"),
]


@pytest.mark.parametrize(("document", "expected"), PIXEL_CASES, ids=[c for c, _ in PIXEL_CASES])
def test_the_pixel_goes_where_the_body_ends(document: str, expected: str) -> None:
    assert markup.rewrite(document, [], "PIXEL") == expected


def test_rewriting_replaces_only_the_given_href_values() -> None:
    document = (
        "<a href='https://a.example/?x=1&amp;y=2'>A</a> <a href=https://b.example/>B</a> "
        "<img alt=\"<a href='https://x.example/in-attr'>\"></body>"
    )
    _, second = markup.find_anchors(document)
    rewritten = markup.rewrite(document, [(second, 'https://t.example/?a="1"&b=2')], PIXEL)
    assert rewritten == (
        "<a href='https://a.example/?x=1&amp;y=2'>A</a> "
        "<a href=https://t.example/?a=&quot;1&quot;&amp;b=2>B</a> "
        f"<img alt=\"<a href='https://x.example/in-attr'>\">{PIXEL}</body>"
    )
    assert markup.rewrite(document, [], None) == document


# Documents built from fragments, compared with Python's HTMLParser (which reads CDATA sections
# to "]]>" as the scanner does). The fragments stay within what HTML and HTMLParser read alike:
# HTMLParser ends a comment at "-- >" and not at "--!>", reads `<!-->` as the start of a longer
# comment, ends an end tag at the first ">" even inside a quoted attribute value, ends raw text
# at "</script >" but also at "</ script>", does not know the escapes of `<!--` inside a script,
# reads "==" as "=", and reads the rest of an unclosed tag or comment as text; so comments, tags
# and raw text here are always closed, and never in those shapes.

URLS = [
    "https://x.example/in-attr",
    "http://y.example/?a=1&amp;b=2",
    "https://z.example/p?q=a&lt;b",
    "mailto:a@b.example",
    "#top",
    "",
    " https://s.example/ ",
]
TEXT = st.text(st.sampled_from("ab é例 \n\t;#&=/\"'!?-"), max_size=6)
ANCHOR_TEXT = st.builds(
    lambda quote, url: f"<a href={quote}{url}{quote}>",
    st.sampled_from(["'", '"']),
    st.sampled_from(URLS),
)


def _quoted(value: str, quote: str) -> str:
    return quote + value.replace(quote, "&quot;" if quote == '"' else "&#39;") + quote


@st.composite
def attributes(draw: st.DrawFn) -> str:
    pieces: list[str] = []
    unquoted_before = False
    for _ in range(draw(st.integers(0, 4))):
        name = draw(st.sampled_from(["href", "href", "HREF", "title", "alt", "data-tracking", "x"]))
        separators = [" ", "\n", "\t ", "  "] + ([] if unquoted_before else ["/"])
        separator = draw(st.sampled_from(separators))
        kind = draw(st.sampled_from(["double", "single", "unquoted", "none"]))
        equals = draw(st.sampled_from(["=", " = ", "=\n"]))
        unquoted_before = kind == "unquoted"
        if kind == "none":
            pieces.append(f"{separator}{name}")
            continue
        value = draw(st.one_of(st.sampled_from(URLS), ANCHOR_TEXT, TEXT))
        if kind == "unquoted":
            value = draw(
                st.one_of(
                    st.sampled_from([u.strip() for u in URLS if u.strip()]),
                    st.sampled_from(["<a", "x<a", "a'b", 'a"b', "&amp;", "é", "a=b", "/"]),
                )
            )
            pieces.append(f"{separator}{name}{equals}{value}")
        else:
            quote = "'" if kind == "single" else '"'
            pieces.append(f"{separator}{name}{equals}{_quoted(value, quote)}")
    return "".join(pieces)


@st.composite
def start_tags(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(["a", "A", "b", "p", "img", "body", "html", "abbr"]))
    end = draw(st.sampled_from([">", " >", "/>"]))
    return f"<{name}{draw(attributes())}{end}"


# Anchors with at least one quoted href among other attributes.
anchor_tags = st.builds(
    lambda before, quote, url, after: f"<a{before} href={_quoted(url, quote)}{after}>",
    attributes(),
    st.sampled_from(["'", '"']),
    st.sampled_from(URLS),
    attributes(),
)


END_TAGS = ["</a>", "</p>", "</body>", "</BODY>", "</html>", "</body >", "</b>"]
INNER = st.one_of(
    TEXT,
    ANCHOR_TEXT,
    st.sampled_from(["</a>", "<b>", "</body>", "</html>", "<body>", "'", '"', "<", ">", "<p x='"]),
)


@st.composite
def comments(draw: st.DrawFn) -> str:
    content = "".join(draw(st.lists(INNER, max_size=4)))
    if "--" in content or content.startswith((">", "->")) or content.endswith("-"):
        content = ""
    return f"<!--{content}-->"


@st.composite
def raw_texts(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(RAW_TEXT_ELEMENTS))
    tag = draw(st.sampled_from([name, name.upper()]))
    content = "".join(draw(st.lists(st.one_of(INNER, st.just("-->")), max_size=4)))
    if re.search(rf"</\s*{name}|<!--", content, re.IGNORECASE):
        content = ""
    return f"<{tag}>{content}</{tag}>"


@st.composite
def cdata(draw: st.DrawFn) -> str:
    content = "".join(draw(st.lists(INNER, max_size=4)))
    return f"<![CDATA[{content.replace(']', '')}]]>"


ENTITIES = ["&amp;", "&lt;a href='https://e.example/'&gt;", "&#60;a href=x&#62;", "&", "&lt;"]
STRAYS = ["< ", "<3", "<=", "<>", ">", " > ", "<<b>"]
DECLARATIONS = [
    "<!DOCTYPE html>",
    "<?xml version='1.0'?>",
    "<!x <a href='https://b.example/'>",
    "<![if !mso]>",
    "<![endif]>",
]
fragments = st.one_of(
    TEXT,
    start_tags(),
    anchor_tags,
    st.sampled_from(END_TAGS),
    comments(),
    raw_texts(),
    cdata(),
    st.sampled_from(ENTITIES + STRAYS + DECLARATIONS),
)
documents = st.lists(fragments, max_size=25).map("".join)


@settings(max_examples=800, deadline=None)
@given(documents)
def test_anchors_are_those_htmlparser_sees(document: str) -> None:
    assert [html.unescape(raw) for raw in hrefs(document)] == Reference(document).hrefs


@settings(max_examples=500, deadline=None)
@given(documents)
def test_rewriting_changes_only_href_values_and_adds_a_real_pixel(document: str) -> None:
    anchors = markup.find_anchors(document)
    replacements = [
        (anchor, f"https://t.example/{index}?a=1&b=2") for index, anchor in enumerate(anchors)
    ]
    rewritten = markup.rewrite(document, replacements, PIXEL)

    reference = Reference(rewritten)
    assert reference.hrefs == [url for _, url in replacements]
    # The pixel is a real tag: just before the last end tag of the body, else of the document,
    # else after every other tag.
    events = reference.tags
    (pixel_index,) = [i for i, event in enumerate(events) if ("src", PIXEL_URL) in event[2]]
    body_ends = [i for i, event in enumerate(events) if event[:2] == ("end", "body")]
    html_ends = [i for i, event in enumerate(events) if event[:2] == ("end", "html")]
    if body_ends or html_ends:
        assert pixel_index + 1 == (body_ends or html_ends)[-1]
    else:
        assert pixel_index == len(events) - 1

    # Every other byte is as it was sent.
    at = rewritten.index(PIXEL)
    restored = rewritten[:at] + rewritten[at + len(PIXEL) :]
    expected, position = [], 0
    for anchor, url in replacements:
        expected += [document[position : anchor.start], html.escape(url, quote=True)]
        position = anchor.end
    expected.append(document[position:])
    assert restored == "".join(expected)
