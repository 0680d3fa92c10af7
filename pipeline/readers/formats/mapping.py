"""A source's mapping file (TOML in the landing zone): which partner app a client id is, which
canonical scopes a permission name stands for, user ids to compare by, and a gateway's fields.

    [apps]    "423.apps.googleusercontent.com" = "tunely-ios"
    [scopes]  "Mail.Read" = "messages.read"      # several scopes: space-separated
    [users]   "9a8b..." = "alice@example.test"   # e.g. an Entra object id → its UPN
    [fields]  request_id = "requestId"           # gateway JSON: canonical field → dotted path
"""

from __future__ import annotations

import posixpath
import tomllib
from dataclasses import dataclass, field

from pipeline.errors import ConfigError
from pipeline.readers.landing import Landing

TABLES = ("apps", "scopes", "users", "fields")


@dataclass(frozen=True)
class Mapping:
    apps: dict[str, str] = field(default_factory=dict)
    scopes: dict[str, str] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)


def load_mapping(landing: Landing, relative_path: str) -> Mapping:
    """The mapping at `relative_path` in the landing zone; an empty one when none is named."""
    if not relative_path:
        return Mapping()
    path = posixpath.join(landing.root, relative_path)
    try:
        with landing.fs.open(path, "rb") as fh:
            document = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"mapping file {relative_path} not found in {landing.url}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"mapping file {relative_path}: {exc}") from None
    unknown = set(document) - set(TABLES)
    if unknown:
        raise ConfigError(f"mapping file {relative_path}: unknown table(s) {sorted(unknown)}")
    tables = {}
    for name in TABLES:
        table = document.get(name, {})
        if not isinstance(table, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in table.items()
        ):
            raise ConfigError(f"mapping file {relative_path}: [{name}] must map text to text")
        tables[name] = dict(table)
    return Mapping(**tables)
