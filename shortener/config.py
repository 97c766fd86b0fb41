"""Settings: `config/shortener.toml`, then the file in `SHORTENER_CONFIG`, then the environment."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from shortener.parsing import whole_number

DEFAULTS_FILE = Path(__file__).resolve().parent.parent / "config" / "shortener.toml"
_ORG_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_API_KEY = re.compile(r"^[\x21-\x7e]{16,256}$")
MAX_SIGNING_KEY_VERSION = 1_000_000


class SettingsError(Exception):
    """A setting is invalid; the message names it."""


def _pairs(raw: str, setting: str) -> list[tuple[str, str]]:
    pairs = []
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        left, sep, right = item.rpartition(":")
        if not sep or not left or not right:
            raise ValueError(f"{setting}: expected comma-separated NAME:VALUE pairs, got {item!r}")
        pairs.append((left, right))
    return pairs


class Settings(BaseSettings):
    """Every setting of the service. Field defaults mirror `config/shortener.toml`."""

    model_config = SettingsConfigDict(env_prefix="SHORTENER_", extra="ignore", frozen=True)

    redis_url: str | None = None
    redis_cluster: bool = False
    data_dir: Path = Path("./var")
    base_url: str = "http://127.0.0.1:8000"
    api_keys: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    signing_keys: Annotated[dict[int, str], NoDecode] = Field(default_factory=dict)
    link_ttl_seconds: int = Field(default=31_536_000, ge=1, le=10 * 31_536_000)
    tracking_window_seconds: int = Field(default=31_536_000, ge=0)
    interaction_retention_seconds: int = Field(default=2_592_000, ge=60)
    max_body_bytes: int = Field(default=1_048_576, ge=1024, le=64 * 1_048_576)
    redis_timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    miss_limit_per_minute: int = Field(default=120, ge=0)
    schemeless_scheme: str = "https"
    http_only_hosts: Annotated[frozenset[str], NoDecode] = Field(default_factory=frozenset)

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s?#]+(/[^\s?#]*)?$", value):
            raise ValueError("must be an absolute http(s) URL without query or fragment")
        return value.rstrip("/")

    @field_validator("api_keys", mode="before")
    @classmethod
    def _api_keys(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        keys: dict[str, str] = {}
        for key, org in _pairs(value, "KEY:ORG"):
            if not _API_KEY.match(key):
                raise ValueError("an API key must be 16 to 256 printable ASCII characters")
            if not _ORG_ID.match(org):
                raise ValueError(f"org {org!r} must be 1 to 64 of A-Z a-z 0-9 . _ -")
            keys[key] = org
        return keys

    @field_validator("signing_keys", mode="before")
    @classmethod
    def _signing_keys(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        keys: dict[int, str] = {}
        for written, secret in _pairs(value, "VERSION:SECRET"):
            version = whole_number(written)
            if version is None or not 1 <= version <= MAX_SIGNING_KEY_VERSION:
                highest = MAX_SIGNING_KEY_VERSION
                raise ValueError(f"version {written!r} must be a whole number from 1 to {highest}")
            if len(secret) < 16:
                raise ValueError(f"the secret of version {version} must have 16 characters or more")
            keys[version] = secret
        return keys

    @field_validator("schemeless_scheme")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if value not in ("http", "https"):
            raise ValueError("must be http or https")
        return value

    @field_validator("http_only_hosts", mode="before")
    @classmethod
    def _hosts(cls, value: Any) -> Any:
        if isinstance(value, str):
            return frozenset(h.strip().lower() for h in value.split(",") if h.strip())
        return value

    @property
    def embedded(self) -> bool:
        return self.redis_url is None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        files = [path for path in _config_files() if path.is_file()]
        # Later files win in TomlConfigSettingsSource, so the defaults go first.
        toml = TomlConfigSettingsSource(settings_cls, toml_file=files) if files else None
        return tuple(s for s in (init_settings, env_settings, toml) if s is not None)


def _config_files() -> list[Path]:
    files = [DEFAULTS_FILE]
    override = os.environ.get("SHORTENER_CONFIG")
    if override:
        path = Path(override)
        if not path.is_file():
            raise SettingsError(f"SHORTENER_CONFIG: no such file {override!r}")
        files.append(path)
    return files


def load_settings(**overrides: Any) -> Settings:
    """Read the settings, or raise SettingsError naming the first setting that is wrong."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            name = "SHORTENER_" + "_".join(str(p) for p in item["loc"][:1]).upper()
            problems.append(f"{name}: {item['msg']}")
        raise SettingsError("invalid setting " + "; ".join(problems)) from None
    except ValueError as error:
        raise SettingsError(f"invalid configuration: {error}") from None
