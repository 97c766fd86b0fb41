"""API and signing keys: required in production, generated once for development."""

from __future__ import annotations

import secrets
from pathlib import Path

from shortener.config import Settings, SettingsError
from shortener.datadir import create_private, make_private, read_private
from shortener.text.parsing import whole_number

DEV_ORG = "dev"
API_KEYS_FILE = "api-keys"
SIGNING_KEYS_FILE = "signing-keys"
ADMIN_KEYS_FILE = "admin-keys"


def _read_or_create(path: Path, make: str) -> tuple[str, bool]:
    existing = read_private(path)
    if existing is not None:
        return existing.strip(), False
    # Created private and exclusive: if two processes race, one writes, the other reads.
    if create_private(path, make + "\n"):
        return make, True
    return (read_private(path) or "").strip(), False


def with_credentials(settings: Settings, announce: bool = False) -> Settings:
    """The settings with keys filled in, or SettingsError where production lacks them.

    On the embedded store, the data dir is made private first (UnsafeDataDir, a
    SettingsError, where it cannot be), and missing keys are generated into it; with
    `announce`, a key made just now is printed once, since it is shown nowhere else.
    """
    if not settings.embedded:
        missing = [
            name
            for name, value in (
                ("SHORTENER_API_KEYS", settings.api_keys),
                ("SHORTENER_SIGNING_KEYS", settings.signing_keys),
            )
            if not value
        ]
        if missing:
            raise SettingsError(
                f"{' and '.join(missing)} must be set when SHORTENER_REDIS_URL is set"
            )
        return settings
    make_private(settings.data_dir)
    updates: dict[str, object] = {}
    if not settings.api_keys:
        raw, made = _read_or_create(
            settings.data_dir / API_KEYS_FILE, f"{secrets.token_urlsafe(24)}:{DEV_ORG}"
        )
        key, _, org = raw.rpartition(":")
        updates["api_keys"] = {key: org}
        if made and announce:
            print(
                f"Development API key for org {org!r}: {key}\n"
                f"(kept in {settings.data_dir / API_KEYS_FILE}; shown only this once)",
                flush=True,
            )
    if not settings.admin_keys:
        key, made = _read_or_create(settings.data_dir / ADMIN_KEYS_FILE, secrets.token_urlsafe(24))
        updates["admin_keys"] = frozenset({key})
        if made and announce:
            print(
                f"Development admin key: {key}\n"
                f"(kept in {settings.data_dir / ADMIN_KEYS_FILE}; shown only this once)",
                flush=True,
            )
    if not settings.signing_keys:
        raw, _ = _read_or_create(
            settings.data_dir / SIGNING_KEYS_FILE, f"1:{secrets.token_urlsafe(32)}"
        )
        written, _, secret = raw.partition(":")
        version = whole_number(written)
        if version is None:
            raise SettingsError(f"{settings.data_dir / SIGNING_KEYS_FILE}: no VERSION:SECRET")
        updates["signing_keys"] = {version: secret}
    return settings.model_copy(update=updates)
