"""The README's examples, run against a live service: what it shows is what the service answers.

Every `curl` and `shortener` command in a `sh` block is run in the README's order. Where an
output block follows the command block directly, the answer must match it once the values that
differ from run to run (codes, ids, digests, times) are set aside: a `json` block is compared as
JSON, an `http` block by status line and the headers it lists, a plain block as text.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.redis_servers import RedisServer
from tests.support.service import ADMIN_KEY, API_KEY, Service, run_cli, running_service, service_env

README = Path(__file__).resolve().parents[2] / "README.md"
DOCUMENTED_BASE = "http://127.0.0.1:8000"
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
_CODE = r"[1-9A-Za-z][0-9A-Za-z]{5,11}"
_SHORT_URL = re.compile(re.escape(DOCUMENTED_BASE) + rf"/({_CODE})\b")
_VOLATILE = (
    (re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d| UTC)?"), "<time>"),
    (re.compile(r"\b\d{13}-\d+\b"), "<id>"),
    (re.compile(r"/api/orgs/[A-Za-z0-9_-]+/"), "/api/orgs/<org>/"),
    (re.compile(r"digest=[A-Za-z0-9_-]+"), "digest=<digest>"),
)
# `settled` turns true within a second of the click: whether it has yet depends on timing.
_VOLATILE_FIELDS = {"id", "next", "key_id", "key", "ttl_seconds", "secret", "settled"}


@dataclass
class Example:
    command: str
    output_kind: str | None = None
    output: str | None = None


@dataclass
class Session:
    service: Service
    codes: dict[str, str] = field(default_factory=dict)

    def with_codes(self, text: str) -> str:
        """The text with the README's codes replaced by the ones this run was given."""
        for documented, actual in self.codes.items():
            text = re.sub(rf"\b{re.escape(documented)}\b", actual, text)
        return text

    def substitute(self, command: str) -> str:
        """The command with the README's codes, key and address replaced by this run's."""
        command = self.with_codes(command)
        command = command.replace("$ADMIN_KEY", ADMIN_KEY)
        command = command.replace("$KEY", API_KEY).replace('"$KEY"', API_KEY)
        return command.replace(DOCUMENTED_BASE, self.service.base_url)

    def learn_codes(self, documented: str, actual: str) -> None:
        """Pair the codes a documented output shows with those the service gave, in order."""
        shown = list(dict.fromkeys(_codes_in(documented)))
        given = list(dict.fromkeys(_codes_in(actual)))
        for old, new in zip(shown, given, strict=False):
            self.codes.setdefault(old, new)


def _codes_in(text: str) -> list[str]:
    found = _SHORT_URL.findall(text)
    found += re.findall(rf'"(?:code|link_id)": "({_CODE})"', text)
    found += re.findall(rf"^code\s+({_CODE})$", text, re.MULTILINE)
    return found


def examples(readme: str) -> Iterator[Example]:
    blocks = list(_FENCE.finditer(readme))
    for index, block in enumerate(blocks):
        if block.group(1) != "sh":
            continue
        following = blocks[index + 1] if index + 1 < len(blocks) else None
        directly_after = (
            following is not None
            and following.group(1) != "sh"
            and readme[block.end() : following.start()].strip() == ""
        )
        commands = [c for c in _commands(block.group(2)) if _runnable(c)]
        for position, command in enumerate(commands):
            example = Example(command)
            if directly_after and position == len(commands) - 1 and following is not None:
                example.output_kind = following.group(1) or "text"
                example.output = following.group(2)
            yield example


def _commands(script: str) -> Iterator[str]:
    """Shell commands: continuation lines and lines inside quotes joined, comments dropped."""
    pending = ""
    for line in re.sub(r"\\\n\s*", " ", script).splitlines():
        pending = f"{pending}\n{line}" if pending else line
        try:
            words = shlex.split(pending, comments=True)
        except ValueError:
            continue  # a quote is still open: the command goes on on the next line
        pending = ""
        if words:
            yield shlex.join(words)
    assert not pending, f"unterminated shell command: {pending}"


def _runnable(command: str) -> bool:
    words = shlex.split(command)
    if words[0] == "curl":
        return True
    return words[0] == "shortener" and words[1] in ("inspect", "expiring")


def _normalise(value: Any, key: str | None = None) -> Any:
    if isinstance(value, dict):
        return {k: _normalise(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    if key in _VOLATILE_FIELDS and value is not None:
        return f"<{key}>"
    if isinstance(value, str):
        return _normalise_text(value)
    return value


def _normalise_text(text: str) -> str:
    text = text.replace(DOCUMENTED_BASE, "<base>")
    for pattern, placeholder in _VOLATILE:
        text = pattern.sub(placeholder, text)
    return text


def _curl(command: str, service: Service) -> httpx.Response:
    words = shlex.split(command)[1:]
    method, headers, data, url = "GET", {}, None, None
    words_iter = iter(words)
    for word in words_iter:
        if word in ("-X", "--request"):
            method = next(words_iter)
        elif word in ("-H", "--header"):
            name, _, value = next(words_iter).partition(":")
            headers[name.strip()] = value.strip()
        elif word in ("-d", "--data"):
            data = next(words_iter)
            method = "POST" if method == "GET" else method
        elif word.startswith("-"):
            assert set(word[1:]) <= set("sSi"), f"the README uses a curl option {word!r}"
        else:
            url = word
    assert url is not None, command
    return httpx.request(method, url, headers=headers, content=data, timeout=10)


def _check_http(response: httpx.Response, expected: str) -> None:
    status_line, *header_lines = expected.strip().splitlines()
    assert int(status_line.split()[1]) == response.status_code, response.text
    for line in header_lines:
        name, _, value = line.partition(":")
        assert name.strip().lower() in response.headers, line
        assert _normalise_text(response.headers[name.strip()]) == _normalise_text(value.strip())


@pytest.fixture
def live(redis_server: RedisServer, tmp_path: Path) -> Iterator[Session]:
    import redis

    redis.Redis.from_url(redis_server.url).flushall()
    env = service_env(redis_server.url, tmp_path / "data")
    # The README's org, and its base URL: lengths (and so SMS segments) must match what it shows.
    env["SHORTENER_API_KEYS"] = f"{API_KEY}:dev"
    env["SHORTENER_BASE_URL"] = DOCUMENTED_BASE
    with running_service(env) as service:
        yield Session(service)


def test_the_readme_examples_answer_as_shown(live: Session) -> None:
    ran = 0
    for example in examples(README.read_text()):
        command = live.substitute(example.command)
        if command.startswith("shortener"):
            result = run_cli(live.service.env, *shlex.split(command)[1:])
            answer = result.stdout.replace(live.service.base_url, DOCUMENTED_BASE)
            assert not result.stderr, result.stderr
            if example.output is not None:
                live.learn_codes(example.output, answer)
                expected = live.with_codes(example.output)
                assert _normalise_text(answer.strip()) == _normalise_text(expected.strip()), (
                    f"{command}\n{answer}"
                )
        else:
            response = _curl(command, live.service)
            answer = response.text.replace(live.service.base_url, DOCUMENTED_BASE)
            assert response.status_code < 500, f"{command}\n{answer}"
            if example.output_kind == "json" and example.output is not None:
                live.learn_codes(example.output, answer)
                expected = json.loads(live.with_codes(example.output))
                assert _normalise(response.json()) == _normalise(expected), (
                    f"{command}\n{json.dumps(response.json(), indent=1)}"
                )
            elif example.output_kind == "http" and example.output is not None:
                _check_http(
                    response, example.output.replace(DOCUMENTED_BASE, live.service.base_url)
                )
        ran += 1
    assert ran >= 8, "the README should show the main calls"
