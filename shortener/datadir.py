"""The data dir: private to the service's user, or refused.

The embedded Redis keeps the code secret and every link there, and development keys are made
there. Whoever can read it can mint valid codes and read every target and contact id; whoever
can write to it can plant keys or a symbolic link that the service then writes through.

So on every start the data dir must be a real directory (not a symbolic link) owned by the
service's user. It is then tightened: the dir and any dir in it to 0700, every other entry to
0600. Tightening a dir that others could write to is safe only because every entry in it must
belong to the user and must not be a symbolic link, else the start is refused: once the dir
is 0700, no other user can add or swap an entry, so what was checked stays as checked. A dir
that another user owns is refused outright, whatever its mode: its owner can always change it.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from shortener.config import SettingsError

DIR_MODE = 0o700
FILE_MODE = 0o600
# For the embedded Redis, so that what it creates (AOF, RDB, log, pid file) is private too.
PRIVATE_UMASK = 0o077


class UnsafeDataDir(SettingsError):
    """The data dir, or something in it, is not the service user's alone."""


def make_private(data_dir: Path) -> Path:
    """The data dir as an absolute path, created or tightened so that only this user reaches
    it; UnsafeDataDir where it is a symbolic link or holds anything another user owns."""
    path = Path(os.path.abspath(data_dir))
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=DIR_MODE)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        if path.is_symlink():
            raise _symlink(path) from None
        raise UnsafeDataDir(
            f"the data dir {path} is not a directory; set SHORTENER_DATA_DIR to a directory"
        ) from None
    try:
        _check_owner(path, os.fstat(fd))
        # Before the entries are looked at, so that no other user can swap one afterwards.
        os.fchmod(fd, DIR_MODE)
    finally:
        os.close(fd)
    _tighten_entries(path)
    return path


def _tighten_entries(directory: Path) -> None:
    for entry in os.scandir(directory):
        path = Path(entry.path)
        try:
            info = path.lstat()
        except FileNotFoundError:
            # Redis renames its temporary files away while it runs.
            continue
        if stat.S_ISLNK(info.st_mode):
            raise _symlink(path)
        _check_owner(path, info)
        if stat.S_ISDIR(info.st_mode):
            if stat.S_IMODE(info.st_mode) != DIR_MODE:
                path.chmod(DIR_MODE)
            _tighten_entries(path)
        elif stat.S_IMODE(info.st_mode) != FILE_MODE:
            with contextlib.suppress(FileNotFoundError):
                path.chmod(FILE_MODE)


def _check_owner(path: Path, info: os.stat_result) -> None:
    if info.st_uid != os.geteuid():
        raise UnsafeDataDir(
            f"{path} belongs to another user (uid {info.st_uid}), not to this one "
            f"(uid {os.geteuid()}); the data dir and everything in it must be this user's "
            "own: remove it, or set SHORTENER_DATA_DIR to a directory of this user"
        )


def _symlink(path: Path) -> UnsafeDataDir:
    return UnsafeDataDir(
        f"{path} is a symbolic link; the data dir and the files in it are never reached "
        "through one: replace it with the directory or file itself"
    )


def _open_private(path: Path, flags: int) -> int:
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    except OSError as error:
        if path.is_symlink():
            raise _symlink(path) from error
        raise


def read_private(path: Path) -> str | None:
    """The text of a file in the data dir, or None where there is none."""
    try:
        fd = _open_private(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    with os.fdopen(fd) as file:
        return file.read()


def create_private(path: Path, text: str) -> bool:
    """Write a new file in the data dir; False where it exists already (another process may
    have made it first)."""
    try:
        fd = _open_private(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as file:
        file.write(text)
    return True


def replace_private(path: Path, text: str) -> None:
    """Write a file in the data dir afresh: a new file, never through a link that was there."""
    path.unlink(missing_ok=True)
    if not create_private(path, text):
        raise UnsafeDataDir(f"{path} was created again while the service wrote it")


def open_private(path: Path) -> int:
    """A file descriptor for reading and writing a file in the data dir, made if missing."""
    return _open_private(path, os.O_RDWR | os.O_CREAT)
