"""The program as users run it: settings, the embedded Redis, and `shortener serve`."""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import httpx
import pytest

from shortener import cli
from shortener.config import DEFAULTS_FILE, Settings, SettingsError, load_settings
from shortener.credentials import with_credentials
from shortener.store import embedded
from tests.support import service
from tests.support.apps import open_client
from tests.support.redis_servers import RedisServer, free_port


def test_code_defaults_match_the_documented_defaults_file() -> None:
    documented = tomllib.loads(DEFAULTS_FILE.read_text())
    assert set(documented) | {"redis_url", "base_url"} == set(Settings.model_fields)
    from_file = Settings(**documented)
    from_code = Settings.model_construct()
    for name in documented:
        assert getattr(from_file, name) == getattr(from_code, name), name


def test_config_file_then_environment_override_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    override = tmp_path / "override.toml"
    override.write_text('base_url = "https://s.example"\nlink_ttl_seconds = 60\n')
    monkeypatch.setenv("SHORTENER_CONFIG", str(override))
    monkeypatch.setenv("SHORTENER_LINK_TTL_SECONDS", "30")
    settings = load_settings()
    assert settings.base_url == "https://s.example"
    assert settings.link_ttl_seconds == 30
    assert settings.max_body_bytes == 1_048_576


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("SHORTENER_LINK_TTL_SECONDS", "soon", "SHORTENER_LINK_TTL_SECONDS"),
        ("SHORTENER_REDIS_URL", "http://x", "SHORTENER_REDIS_URL"),
        ("SHORTENER_API_KEYS", "short:org", "SHORTENER_API_KEYS"),
        ("SHORTENER_SIGNING_KEYS", "x:0123456789abcdef", "SHORTENER_SIGNING_KEYS"),
        ("SHORTENER_BASE_URL", "ftp://x", "SHORTENER_BASE_URL"),
    ],
)
def test_invalid_settings_name_the_setting(
    variable: str, value: str, named: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=named):
        load_settings()


def test_a_misspelled_variable_stops_the_start_and_suggests_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHORTENER_LINK_TTL", "5")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert "SHORTENER_LINK_TTL " in str(raised.value)
    assert "did you mean SHORTENER_LINK_TTL_SECONDS?" in str(raised.value)


def test_a_misspelled_key_in_a_config_file_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "x.toml"
    config.write_text("link_ttl_seconds = 60\nlink_ttl = 5\n")
    monkeypatch.setenv("SHORTENER_CONFIG", str(config))
    with pytest.raises(SettingsError) as raised:
        load_settings()
    message = str(raised.value)
    assert f"{config}: unknown setting link_ttl " in message
    assert "did you mean link_ttl_seconds?" in message


def test_a_bad_value_names_where_it_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "x.toml"
    config.write_text('link_ttl_seconds = "soon"\n')
    monkeypatch.setenv("SHORTENER_CONFIG", str(config))
    with pytest.raises(SettingsError) as from_file:
        load_settings()
    assert f"{config}: link_ttl_seconds: Input should be" in str(from_file.value)
    assert "SHORTENER_LINK_TTL_SECONDS" not in str(from_file.value)
    monkeypatch.setenv("SHORTENER_LINK_TTL_SECONDS", "later")
    with pytest.raises(SettingsError) as from_environment:
        load_settings()
    assert "SHORTENER_LINK_TTL_SECONDS: Input should be" in str(from_environment.value)
    assert str(config) not in str(from_environment.value)


def test_a_config_file_that_is_not_toml_names_the_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "x.toml"
    config.write_text('base_url = "https://s.example"\nlink_ttl_seconds 5\n')
    monkeypatch.setenv("SHORTENER_CONFIG", str(config))
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert str(config) in str(raised.value) and "line 2" in str(raised.value)


def test_serve_stops_at_a_misspelled_setting(redis_server: RedisServer, tmp_path: Path) -> None:
    env = service.service_env(redis_server.url, tmp_path / "data", link_ttl="5")
    run = service.run_cli(env, "serve", "--port", str(free_port()))
    assert run.returncode == 2
    assert "SHORTENER_LINK_TTL" in run.stderr and "SHORTENER_LINK_TTL_SECONDS" in run.stderr


def test_every_argument_of_every_command_says_what_it_does() -> None:
    parser = cli._parser()
    (commands,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for choice in commands._choices_actions:
        assert choice.help, choice.dest
    for name, command in commands.choices.items():
        for action in command._actions:
            assert action.help, f"{name} {action.option_strings or action.dest}"
            if action.default not in (None, False, argparse.SUPPRESS):
                assert "%(default)s" in action.help, f"{name} {action.option_strings}"
    shown = service.run_cli(dict(os.environ), "serve", "--help")
    assert shown.returncode == 0
    assert re.search(r"--port PORT\s+.*port.*\(default: 8000\)", shown.stdout, re.S)
    assert "SHORTENER_BASE_URL" in shown.stdout


def test_short_links_follow_the_port_serve_listens_on(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    env = service.service_env(redis_server.url, tmp_path / "data")
    with service.running_service(env, workers=2, set_base_url=False) as running:
        # A fresh connection per request, so that both workers answer some.
        prefixes = {
            running.shorten(f"https://shop.example.com/{i}")["links"][0]["short_url"].rsplit(
                "/", 1
            )[0]
            for i in range(8)
        }
    assert prefixes == {running.base_url}


def test_serve_on_every_interface_links_to_loopback_and_says_to_set_the_base_url(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    env = service.service_env(redis_server.url, tmp_path / "data")
    # The very case under test: a wildcard address no phone can be sent to.
    wildcard = "0.0.0.0"  # noqa: S104
    with service.running_service(env, host=wildcard, set_base_url=False) as running:
        short_url = running.shorten("https://shop.example.com/w")["links"][0]["short_url"]
    assert short_url.startswith(running.base_url + "/")
    assert "set SHORTENER_BASE_URL" in running.logs()


def test_a_configured_base_url_wins_over_the_listen_address(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    config = tmp_path / "shortener.toml"
    config.write_text('base_url = "https://s.example/go"\n')
    env = {
        **service.service_env(redis_server.url, tmp_path / "data"),
        "SHORTENER_CONFIG": str(config),
    }
    with service.running_service(env, set_base_url=False) as running:
        short_url = running.shorten("https://shop.example.com/c")["links"][0]["short_url"]
    assert short_url.startswith("https://s.example/go/")


def test_without_a_base_url_links_default_to_the_default_listen_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SHORTENER_BASE_URL", raising=False)
    monkeypatch.delenv("SHORTENER_CONFIG", raising=False)
    assert load_settings().base_url == "http://127.0.0.1:8000"


def test_production_refuses_to_start_without_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHORTENER_REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("SHORTENER_API_KEYS", "")
    monkeypatch.setenv("SHORTENER_SIGNING_KEYS", "")
    run = subprocess.run(
        [sys.executable, "-m", "shortener", "serve"], capture_output=True, text=True, timeout=30
    )
    assert run.returncode == 2
    assert "SHORTENER_API_KEYS" in run.stderr and "SHORTENER_SIGNING_KEYS" in run.stderr


def test_development_keys_are_made_once_and_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(data_dir=tmp_path, api_keys={}, signing_keys={})
    first = with_credentials(settings, announce=True)
    (key,) = first.api_keys
    assert key in capsys.readouterr().out
    again = with_credentials(settings, announce=True)
    assert again.api_keys == first.api_keys and again.signing_keys == first.signing_keys
    assert key not in capsys.readouterr().out
    assert oct((tmp_path / "api-keys").stat().st_mode & 0o777) == "0o600"


def test_a_second_process_attaches_to_the_running_embedded_redis(tmp_path: Path) -> None:
    first = embedded.attach_or_start(tmp_path)
    try:
        second = embedded.attach_or_start(tmp_path)
        assert first.owned and not second.owned
        assert second.pid == first.pid
        second.stop()
        assert embedded._answers(first.socket_path)
    finally:
        first.stop()
    assert not embedded._answers(first.socket_path)


async def test_codes_survive_a_restart_on_the_embedded_redis(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, base_url="http://sho.rt")
    client, lifespan = await open_client(settings)
    key = (tmp_path / "api-keys").read_text().strip().rpartition(":")[0]
    response = await client.post(
        "/v1/messages/shorten",
        json={"body": "Hi https://shop.example.com/a"},
        headers={"Authorization": f"Bearer {key}"},
    )
    code = response.json()["links"][0]["code"]
    await client.aclose()
    await lifespan.__aexit__(None, None, None)
    assert not embedded._answers(tmp_path / embedded.SOCKET_NAME)

    client, lifespan = await open_client(settings)
    try:
        tap = await client.get(f"/{code}")
        assert tap.status_code == 302
        assert tap.headers["location"] == "https://shop.example.com/a"
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


def test_sigterm_stops_the_embedded_redis_with_one_worker(tmp_path: Path) -> None:
    env = service.service_env(None, tmp_path / "data")
    with service.running_service(env) as running:
        assert embedded._answers(tmp_path / "data" / embedded.SOCKET_NAME)
        running.process.send_signal(signal.SIGTERM)
        assert running.process.wait(30) == 128 + signal.SIGTERM
    assert not embedded._answers(tmp_path / "data" / embedded.SOCKET_NAME)


def test_shortener_serve_shortens_and_redirects(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "SHORTENER_DATA_DIR": str(tmp_path), "SHORTENER_API_KEYS": ""}
    env.pop("SHORTENER_REDIS_URL", None)
    env["SHORTENER_BASE_URL"] = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "shortener", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        key = None
        deadline = time.monotonic() + 30
        while key is None and time.monotonic() < deadline:
            match = re.search(r"API key for org 'dev': (\S+)", process.stdout.readline())
            key = match.group(1) if match else None
        assert key, "the development key was not printed"
        base = f"http://127.0.0.1:{port}"
        dashboard = None
        while dashboard is None and time.monotonic() < deadline:
            match = re.search(r"Dashboard at (\S+)", process.stdout.readline())
            dashboard = match.group(1) if match else None
        assert dashboard == f"{base}/dashboard"
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        shortened = httpx.post(
            f"{base}/v1/messages/shorten",
            json={"body": "Your order: https://track.example.com/o/1"},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert shortened.status_code == 200
        short_url = shortened.json()["links"][0]["short_url"]
        assert short_url.startswith(base)
        # Both workers share the embedded store: every tap lands, whichever worker serves it.
        for _ in range(10):
            tap = httpx.get(short_url, follow_redirects=False)
            assert tap.status_code == 302
            assert tap.headers["location"] == "https://track.example.com/o/1"
        # The address printed is the dashboard's: its sign-in form.
        page = httpx.get(dashboard, headers={"accept": "text/html"})
        assert page.status_code == 200 and 'name="key"' in page.text
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    assert not embedded._answers(tmp_path / embedded.SOCKET_NAME)
