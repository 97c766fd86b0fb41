"""The data dir holds the code secret, every link and the development keys: only the service's
user may reach it, and a dir that someone else could have filled is not trusted."""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from shortener.config import Settings, SettingsError
from shortener.credentials import (
    ADMIN_KEYS_FILE,
    API_KEYS_FILE,
    SIGNING_KEYS_FILE,
    with_credentials,
)
from shortener.store import embedded
from tests.support.redis_servers import free_port

ANOTHER_UID = 65534  # nobody
PLANTED_KEY = "planted-key-0123456789"
PLANTED_SECRET = "planted-signing-secret-0123456789"


def _dev_settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, api_keys={}, signing_keys={})


def _modes(data_dir: Path) -> dict[str, int]:
    """Permission bits of the data dir and of everything under it, by relative path."""
    modes = {".": stat.S_IMODE(data_dir.lstat().st_mode)}
    for parent, dirs, files in os.walk(data_dir):
        for name in dirs + files:
            path = Path(parent, name)
            modes[str(path.relative_to(data_dir))] = stat.S_IMODE(path.lstat().st_mode)
    return modes


def _assert_private(data_dir: Path) -> None:
    for name, mode in _modes(data_dir).items():
        expected = 0o700 if (data_dir / name).is_dir() else 0o600
        assert mode == expected, f"{name}: {oct(mode)}"


@contextlib.contextmanager
def _umask(mask: int) -> Iterator[None]:
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def _loosen(path: Path, mode: int) -> None:
    """Modes as another user or an older version may have left them."""
    os.chmod(path, mode)


def _plant_keys(data_dir: Path) -> None:
    (data_dir / API_KEYS_FILE).write_text(f"{PLANTED_KEY}:dev\n")
    (data_dir / SIGNING_KEYS_FILE).write_text(f"1:{PLANTED_SECRET}\n")


def test_the_embedded_redis_and_the_keys_are_private_to_the_user(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    # The usual umask would leave everything readable by every local user.
    with _umask(0o022):
        with_credentials(_dev_settings(data_dir))
        server = embedded.attach_or_start(data_dir)
    try:
        client = redis.Redis(unix_socket_path=str(server.socket_path))
        client.set("secret:codes", b"s" * 32)
        client.save()
        aof = data_dir / "appendonly.aof"
        deadline = time.monotonic() + 10
        while aof.stat().st_size == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert b"secret:codes" in aof.read_bytes()
        client.close()
        names = set(_modes(data_dir))
        assert {"appendonly.aof", "dump.rdb", "redis.sock", "redis.conf", "redis.pid"} <= names
        assert {API_KEYS_FILE, ADMIN_KEYS_FILE, SIGNING_KEYS_FILE, "redis.log"} <= names
        assert "embedded.lock" in names
        _assert_private(data_dir)
    finally:
        server.stop()
    _assert_private(data_dir)


def test_a_development_admin_key_is_made_once_and_shown_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "var"
    first = with_credentials(_dev_settings(data_dir), announce=True)
    (key,) = first.admin_keys
    assert len(key) >= 16
    assert f"Development admin key: {key}" in capsys.readouterr().out
    again = with_credentials(_dev_settings(data_dir), announce=True)
    assert again.admin_keys == first.admin_keys
    assert key not in capsys.readouterr().out


def test_an_existing_data_dir_of_the_user_is_made_private_on_start(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    (data_dir / "appendonlydir").mkdir(parents=True)
    (data_dir / "appendonly.aof").write_bytes(b"*1\r\n")
    (data_dir / "appendonlydir" / "appendonly.aof.1.incr.aof").write_bytes(b"*1\r\n")
    (data_dir / "dump.rdb").write_bytes(b"REDIS")
    _loosen(data_dir / "appendonly.aof", 0o644)
    _loosen(data_dir / "appendonlydir" / "appendonly.aof.1.incr.aof", 0o666)
    _loosen(data_dir / "dump.rdb", 0o604)
    _loosen(data_dir / "appendonlydir", 0o755)
    _loosen(data_dir, 0o777)
    with_credentials(_dev_settings(data_dir))
    _assert_private(data_dir)

    _loosen(data_dir, 0o755)
    _loosen(data_dir / "dump.rdb", 0o644)
    server = embedded.attach_or_start(data_dir)
    server.stop()
    _assert_private(data_dir)


@pytest.mark.parametrize("mode", [0o700, 0o755, 0o777], ids=oct)
def test_a_data_dir_of_another_user_is_refused(tmp_path: Path, mode: int) -> None:
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    _plant_keys(data_dir)
    for path in (data_dir / API_KEYS_FILE, data_dir / SIGNING_KEYS_FILE, data_dir):
        os.chown(path, ANOTHER_UID, ANOTHER_UID)
    _loosen(data_dir, mode)
    with pytest.raises(SettingsError, match=f"{data_dir}.*another user"):
        with_credentials(_dev_settings(data_dir))
    # Configured keys do not make the data dir safe: the embedded Redis still lives there.
    configured = Settings(
        data_dir=data_dir, api_keys={PLANTED_KEY: "dev"}, signing_keys={1: PLANTED_SECRET}
    )
    with pytest.raises(SettingsError, match="another user"):
        with_credentials(configured)
    with pytest.raises(SettingsError, match="another user"):
        embedded.attach_or_start(data_dir)
    assert not (data_dir / "redis.conf").exists()
    assert stat.S_IMODE(data_dir.stat().st_mode) == mode


def test_a_file_another_user_planted_in_our_data_dir_is_refused(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    _loosen(data_dir, 0o777)
    _plant_keys(data_dir)
    os.chown(data_dir / API_KEYS_FILE, ANOTHER_UID, ANOTHER_UID)
    with pytest.raises(SettingsError, match=f"{data_dir / API_KEYS_FILE}.*another user"):
        with_credentials(_dev_settings(data_dir))
    with pytest.raises(SettingsError, match="another user"):
        embedded.attach_or_start(data_dir)


def test_a_symlinked_data_dir_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    data_dir = tmp_path / "var"
    data_dir.symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(SettingsError, match=f"{data_dir}.*symbolic link"):
        with_credentials(_dev_settings(data_dir))
    with pytest.raises(SettingsError, match="symbolic link"):
        embedded.attach_or_start(data_dir)
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize(
    "name", ["redis.conf", API_KEYS_FILE, SIGNING_KEYS_FILE, "redis.log", "embedded.lock"]
)
def test_a_symlink_in_the_data_dir_is_neither_followed_nor_overwritten(
    tmp_path: Path, name: str
) -> None:
    victim = tmp_path / "victim"
    victim.write_text(f"{PLANTED_KEY}:dev\n")
    _loosen(victim, 0o644)
    data_dir = tmp_path / "var"
    data_dir.mkdir(mode=0o700)
    (data_dir / name).symlink_to(victim)
    with pytest.raises(SettingsError, match=f"{data_dir / name}.*symbolic link"):
        with_credentials(_dev_settings(data_dir))
    with pytest.raises(SettingsError, match="symbolic link"):
        embedded.attach_or_start(data_dir)
    assert victim.read_text() == f"{PLANTED_KEY}:dev\n"
    assert stat.S_IMODE(victim.stat().st_mode) == 0o644


def test_a_dangling_symlink_is_refused_rather_than_created_through(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    data_dir.mkdir(mode=0o700)
    target = tmp_path / "made-through-the-link"
    (data_dir / API_KEYS_FILE).symlink_to(target)
    with pytest.raises(SettingsError, match="symbolic link"):
        with_credentials(_dev_settings(data_dir))
    assert not target.exists()


def test_a_data_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    data_dir.write_text("")
    with pytest.raises(SettingsError, match=f"{data_dir}.*not a directory"):
        with_credentials(_dev_settings(data_dir))


def _run_cli(args: list[str], data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHORTENER_")}
    env["SHORTENER_DATA_DIR"] = str(data_dir)
    env["SHORTENER_API_KEYS"] = f"{PLANTED_KEY}:dev"
    env["SHORTENER_SIGNING_KEYS"] = f"1:{PLANTED_SECRET}"
    process = subprocess.Popen(
        [sys.executable, "-m", "shortener", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        # A service that started anyway: stop it the way that also stops its Redis.
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    return subprocess.CompletedProcess(process.args, process.wait(), stdout, stderr)


@pytest.mark.parametrize(
    "command", [["inspect", "3nSq0fKz"], ["expiring"], ["serve", "--port", "PORT"]]
)
def test_the_cli_refuses_an_unsafe_data_dir_with_a_message(
    tmp_path: Path, command: list[str]
) -> None:
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    os.chown(data_dir, ANOTHER_UID, ANOTHER_UID)
    args = [str(free_port()) if part == "PORT" else part for part in command]
    run = _run_cli(args, data_dir)
    assert run.returncode == 2, run.stdout + run.stderr
    assert str(data_dir) in run.stderr and "another user" in run.stderr
    assert "Traceback" not in run.stderr
    assert not (data_dir / "redis.conf").exists()
