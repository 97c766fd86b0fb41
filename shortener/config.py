"""Settings: `config/shortener.toml`, then the file in `SHORTENER_CONFIG`, then the environment."""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import tomllib
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from shortener.text.hosts import HostPatterns, InvalidPattern
from shortener.text.parsing import whole_number

DEFAULTS_FILE = Path(__file__).resolve().parent.parent / "config" / "shortener.toml"
ENV_PREFIX = "SHORTENER_"
CONFIG_ENV = "SHORTENER_CONFIG"
BASE_URL_ENV = "SHORTENER_BASE_URL"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
_ORG_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_API_KEY = re.compile(r"^[\x21-\x7e]{16,256}$")
MAX_SIGNING_KEY_VERSION = 1_000_000
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# Public link shorteners no org may link to: a chain of short links hides where a message
# really leads, and carriers filter messages that carry these domains. The widely used
# general-purpose ones, including each one's second domain (bitly.com beside bit.ly).
DEFAULT_BLOCKED_DESTINATIONS = frozenset(
    {
        "bit.ly",
        "bitly.com",
        "buff.ly",
        "cutt.ly",
        "goo.gl",
        "is.gd",
        "lnkd.in",
        "ow.ly",
        "rb.gy",
        "rebrand.ly",
        "s.id",
        "shorturl.at",
        "shorturl.com",
        "t.co",
        "t.ly",
        "tiny.cc",
        "tinyurl.com",
        "v.gd",
    }
)


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


def _network(text: str) -> IPNetwork:
    try:
        return ipaddress.ip_network(text)
    except ValueError as error:
        raise ValueError(
            f"{text!r} is not an IP address or network like 10.0.0.0/8 ({error})"
        ) from None


def _checked_base_url(value: str) -> str:
    if not re.match(r"^https?://[^/\s?#]+(/[^\s?#]*)?$", value):
        raise ValueError("must be an absolute http(s) URL without query or fragment")
    return value.rstrip("/")


def is_org_id(text: str) -> bool:
    """Whether `text` can name an org: 1 to 64 of A-Z a-z 0-9 . _ -"""
    return _ORG_ID.fullmatch(text) is not None


def is_wildcard(host: str) -> bool:
    """Whether listening on `host` means every interface (0.0.0.0, ::): no one address."""
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def listen_url(host: str, port: int) -> str:
    """The URL of a service listening on host:port, as a client on this machine opens it."""
    if is_wildcard(host):
        host = DEFAULT_HOST
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class Settings(BaseSettings):
    """Every setting of the service. Field defaults mirror `config/shortener.toml`."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    redis_url: str | None = None
    redis_cluster: bool = False
    data_dir: Path = Path("./var")
    # Unless set, links follow the address `serve` listens on (see `listening_on`).
    base_url: str = listen_url(DEFAULT_HOST, DEFAULT_PORT)
    api_keys: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    admin_keys: Annotated[frozenset[str], NoDecode] = Field(default_factory=frozenset)
    signing_keys: Annotated[dict[int, str], NoDecode] = Field(default_factory=dict)
    link_ttl_seconds: int = Field(default=31_536_000, ge=1, le=10 * 31_536_000)
    tracking_window_seconds: int = Field(default=31_536_000, ge=0)
    interaction_retention_seconds: int = Field(default=2_592_000, ge=60)
    max_body_bytes: int = Field(default=1_048_576, ge=1024, le=64 * 1_048_576)
    redis_timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    header_timeout_seconds: float = Field(default=10.0, gt=0, le=3600)
    body_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    keep_alive_timeout_seconds: int = Field(default=5, ge=1, le=3600)
    max_header_bytes: int = Field(default=16_384, ge=1024, le=1_048_576)
    max_connections: int = Field(default=1000, ge=1, le=1_000_000)
    miss_limit_per_minute: int = Field(default=120, ge=0)
    schemeless_scheme: str = "https"
    http_only_hosts: Annotated[frozenset[str], NoDecode] = Field(default_factory=frozenset)
    trusted_proxies: Annotated[tuple[IPNetwork, ...], NoDecode] = ()
    metrics_key: str | None = None
    org_shorten_limit_per_minute: int = Field(default=0, ge=0)
    blocked_destinations: Annotated[frozenset[str], NoDecode] = DEFAULT_BLOCKED_DESTINATIONS
    webhook_allow_private: bool = False
    webhook_backoff_seconds: float = Field(default=5.0, gt=0, le=86_400)
    webhook_max_attempts: int = Field(default=10, ge=1, le=100)
    webhook_delivery: bool = True
    analytics_retention_days: int = Field(default=400, ge=1, le=3650)
    settle_seconds: int = Field(default=10, ge=1, le=3600)
    scanner_window_seconds: int = Field(default=120, ge=1, le=86_400)
    too_soon_seconds: int = Field(default=0, ge=0, le=86_400)

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value

    @model_validator(mode="before")
    @classmethod
    def _empty_base_url_is_unset(cls, values: Any) -> Any:
        # As for redis_url, an empty value means "not set": here, follow the listen address.
        if isinstance(values, dict) and values.get("base_url") == "":
            return {name: value for name, value in values.items() if name != "base_url"}
        return values

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return _checked_base_url(value)

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

    @field_validator("admin_keys", mode="before")
    @classmethod
    def _admin_keys(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        keys = frozenset(key.strip() for key in value.split(",") if key.strip())
        if any(not _API_KEY.match(key) for key in keys):
            # The values are left out of the message: they are secrets.
            raise ValueError("an admin key must be 16 to 256 printable ASCII characters")
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

    @field_validator("blocked_destinations", mode="before")
    @classmethod
    def _blocked_destinations(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [item for item in value.split(",") if item.strip()]
        if isinstance(value, list | tuple | set | frozenset):
            try:
                return HostPatterns.parse(value).patterns
            except InvalidPattern as error:
                raise ValueError(str(error)) from None
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _trusted_proxies(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(_network(item.strip()) for item in value.split(",") if item.strip())
        return value

    @field_validator("metrics_key")
    @classmethod
    def _metrics_key(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not _API_KEY.match(value):
            # The value is left out of the message: it is a secret.
            raise ValueError("the metrics key must be 16 to 256 printable ASCII characters")
        return value

    @property
    def embedded(self) -> bool:
        return self.redis_url is None

    @property
    def base_url_is_set(self) -> bool:
        """Whether base_url was configured, rather than left to follow the listen address."""
        return "base_url" in self.model_fields_set

    def listening_on(self, host: str, port: int) -> Settings:
        """These settings for a service on host:port: unless set, base_url is its address."""
        if self.base_url_is_set:
            return self
        try:
            base_url = _checked_base_url(listen_url(host, port))
        except ValueError as error:
            raise SettingsError(f"--host {host!r}: links cannot name it: {error}") from None
        return self.model_copy(update={"base_url": base_url})

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        known = set(cls.model_fields)
        _refuse_unknown_variables(os.environ, known)
        files: dict[str, Any] = {}
        for path in _config_files():
            files.update(_read_config_file(path, known))
        return init_settings, env_settings, InitSettingsSource(settings_cls, init_kwargs=files)


def setting_variable(setting: str) -> str:
    return ENV_PREFIX + setting.upper()


def _closest(name: str, known: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(name, sorted(known), n=1)
    return close[0] if close else None


def _unknown(name: str, suggestion: str | None) -> str:
    return f"unknown setting {name}" + (f" (did you mean {suggestion}?)" if suggestion else "")


def _refuse_unknown_variables(environment: Collection[str], settings: Iterable[str]) -> None:
    known = {name.lower() for name in settings} | {CONFIG_ENV[len(ENV_PREFIX) :].lower()}
    problems = []
    for name in sorted(environment):
        if not name.upper().startswith(ENV_PREFIX):
            continue
        # Compared without the common prefix, which would make every name look alike.
        setting = name[len(ENV_PREFIX) :].lower()
        if setting not in known:
            closest = _closest(setting, known)
            problems.append(_unknown(name, closest and setting_variable(closest)))
    if problems:
        raise SettingsError("; ".join(problems))


def _read_config_file(path: Path, known: Collection[str]) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            values = tomllib.load(file)
    except OSError as error:
        raise SettingsError(f"{path}: cannot be read: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(f"{path}: not valid TOML: {error}") from None
    problems = [_unknown(key, _closest(key, known)) for key in values if key not in known]
    if problems:
        raise SettingsError(f"{path}: " + "; ".join(problems))
    return values


def _config_files() -> list[Path]:
    """The files read, the later ones overriding the earlier ones."""
    files = [DEFAULTS_FILE] if DEFAULTS_FILE.is_file() else []
    override = os.environ.get(CONFIG_ENV)
    if override:
        path = Path(override)
        if not path.is_file():
            raise SettingsError(f"{CONFIG_ENV}: no such file {override!r}")
        files.append(path)
    return files


def _origin(setting: str, overrides: Collection[str]) -> str:
    """Where the value of `setting` came from, named as the user wrote it: the environment
    wins over the files, and a later file over an earlier one."""
    if setting in overrides:
        return setting
    variable = setting_variable(setting)
    for name in os.environ:
        if name.upper() == variable:
            return name
    for path in reversed(_config_files()):
        with path.open("rb") as file:
            if setting in tomllib.load(file):
                return f"{path}: {setting}"
    return setting


def load_settings(**overrides: Any) -> Settings:
    """Read the settings, or raise SettingsError naming each setting that is wrong."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            setting = str(item["loc"][0]) if item["loc"] else "settings"
            problems.append(f"{_origin(setting, overrides)}: {item['msg']}")
        raise SettingsError("invalid setting " + "; ".join(problems)) from None
    except ValueError as error:
        raise SettingsError(f"invalid configuration: {error}") from None
