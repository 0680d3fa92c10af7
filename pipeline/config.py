"""Settings from a TOML file, the environment and defaults. Light to import: no pandas or pyarrow."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_PREFIX = "ACCESS_AUDIT_"
DEFAULT_CONFIG_FILE = "access-audit.toml"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(ValueError):
    """A setting a user gave is unusable; the message names it."""


@dataclass(frozen=True)
class Route:
    """Maps an HTTP method and path to (resource, action) when an event does not carry them."""

    methods: tuple[str, ...]
    path_regex: str  # RE2 syntax, matched against the path without its query string
    resource: str
    action: str


def _default_routes() -> tuple[Route, ...]:
    actions = {("GET", "HEAD"): "read", ("POST", "PUT", "PATCH"): "write", ("DELETE",): "delete"}
    collections = {
        "messages": "messages",
        "threads": "messages",
        "conversations": "messages",
        "contacts": "contacts",
        "friends": "contacts",
        "profile": "profile",
        "photos": "photos",
        "events": "events",
    }
    prefix = r"^/(?:v[0-9.]+/)?(?:me|users/[^/]+)/"
    return tuple(
        Route(methods, prefix + collection + r"(?:/|$)", resource, action)
        for collection, resource in collections.items()
        for methods, action in actions.items()
    )


DEFAULT_SECRET_PARAMS = (
    "access_token",
    "refresh_token",
    "id_token",
    "token",
    "code",
    "client_secret",
    "secret",
    "password",
    "passwd",
    "api_key",
    "apikey",
    "key",
    "signature",
    "sig",
    "session",
    "auth",
    "authorization",
    "assertion",
)
# Fields whose values may hold message content; dropped from raw text before it is stored.
DEFAULT_BODY_FIELDS = (
    "body",
    "content",
    "text",
    "message",
    "snippet",
    "subject",
    "html",
    "attachments",
)


@dataclass(frozen=True)
class Settings:
    """Everything a run depends on besides the landing zone's files; recorded in each manifest."""

    landing: str = str(PROJECT_ROOT / "sample_logs")
    warehouse: str = str(PROJECT_ROOT / "warehouse")
    message_resources: tuple[str, ...] = ("messages",)
    clock_skew_seconds: float = 0.0
    routes: tuple[Route, ...] = field(default_factory=_default_routes)
    secret_params: tuple[str, ...] = DEFAULT_SECRET_PARAMS
    body_fields: tuple[str, ...] = DEFAULT_BODY_FIELDS
    read_block_bytes: int = 64 * 1024 * 1024
    raw_max_chars: int = 4096
    duckdb_memory_limit: str = "1GB"
    duckdb_threads: int = 0  # 0: one per core

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_SIMPLE_FIELDS = {f.name: f for f in dataclasses.fields(Settings) if f.name != "routes"}


def _coerce(name: str, value: Any) -> Any:
    default = getattr(Settings(), name)
    try:
        if isinstance(default, tuple):
            if isinstance(value, str):
                value = [v for v in value.replace(",", " ").split() if v]
            if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                raise TypeError
            return tuple(value)
        if isinstance(default, bool):
            raise TypeError
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"setting {name!r}: {value!r} is not a valid {type(default).__name__}"
        ) from None


def _routes(raw: Any) -> tuple[Route, ...]:
    if not isinstance(raw, list):
        raise ConfigError("setting 'routes' must be a list of tables")
    routes = []
    for i, entry in enumerate(raw, 1):
        try:
            routes.append(
                Route(
                    methods=tuple(m.upper() for m in entry["methods"]),
                    path_regex=str(entry["path_regex"]),
                    resource=str(entry["resource"]),
                    action=str(entry["action"]),
                )
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(
                f"routes entry {i}: needs methods, path_regex, resource, action ({exc})"
            ) from None
        if routes[-1].action not in ("read", "write", "delete"):
            raise ConfigError(f"routes entry {i}: action must be read, write or delete")
    return tuple(routes)


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    env: dict[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Defaults, then the config file, then ACCESS_AUDIT_* variables, then explicit overrides."""
    env = dict(os.environ if env is None else env)
    values: dict[str, Any] = {}
    path = config_file or env.get(ENV_PREFIX + "CONFIG")
    if path is None and Path(DEFAULT_CONFIG_FILE).is_file():
        path = DEFAULT_CONFIG_FILE
    if path is not None:
        try:
            with open(path, "rb") as fh:
                file_values = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path}: {exc}") from None
        for name, value in file_values.items():
            if name == "routes":
                values["routes"] = _routes(value)
            elif name in _SIMPLE_FIELDS:
                values[name] = _coerce(name, value)
            else:
                raise ConfigError(f"config file {path}: unknown setting {name!r}")
    for name in _SIMPLE_FIELDS:
        if (ENV_PREFIX + name.upper()) in env:
            values[name] = _coerce(name, env[ENV_PREFIX + name.upper()])
    for name, value in overrides.items():
        if value is not None:
            values[name] = _coerce(name, value) if name in _SIMPLE_FIELDS else value
    settings = Settings(**values)
    if settings.clock_skew_seconds < 0:
        raise ConfigError("setting 'clock_skew_seconds' must not be negative")
    return settings
