"""Settings from a TOML file, the environment and defaults. Light to import (no pyarrow)."""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError

ENV_PREFIX = "ACCESS_AUDIT_"
DEFAULT_CONFIG_FILE = "access-audit.toml"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
MODEL_NAME = "partner_behaviour"  # the behaviour model's name in the models/ store


@dataclass(frozen=True)
class Route:
    """Where an event lacks resource/action: paths matching `path_regex` (RE2, query string
    removed) are `resource`; the action comes from the HTTP method unless the route sets one."""

    path_regex: str
    resource: str
    action: str | None = None


ACTIONS = ("read", "write", "delete")
REVIEW_ROLES = ("viewer", "reviewer")
SEVERITIES = ("low", "medium", "high", "critical")  # lowest first; schema.py re-exports it


SOURCE_KINDS = ("access", "consent", "both")
# The formats a source may be in (SPEC §2); their readers live in pipeline/readers/formats/.
FORMATS = (
    "canonical",
    "google_workspace_token",
    "m365_mail_items_accessed",
    "graph_activity",
    "entra_audit",
    "okta_system_log",
    "gateway",
)


@dataclass(frozen=True)
class Source:
    """One `[[sources]]` table: records of `kind` in `format`, delivered in `<folder>/<day>/`.

    `mapping` is a TOML file in the landing zone (client id → app, permission → scope, and
    for gateway JSON the field mapping); `pattern` is the gateway's line pattern (a preset
    name or a regular expression with named groups)."""

    name: str
    kind: str
    format: str = "canonical"
    folder: str = ""
    mapping: str = ""
    pattern: str = ""

    def __post_init__(self) -> None:
        if not self.folder:  # a source's folder is its name unless told
            object.__setattr__(self, "folder", self.name)

    def gives(self, kind: str) -> bool:
        return self.kind in (kind, "both")


@dataclass(frozen=True)
class ReviewUser:
    """A standalone review UI login: the password only as an argon2 hash."""

    name: str
    password_hash: str
    role: str = "viewer"


def redact_url_password(url: str) -> str:
    """`scheme://user:secret@host/db` → `scheme://user:REDACTED@host/db`."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1REDACTED@", url)


DEFAULT_METHOD_ACTIONS = (
    ("GET", "read"),
    ("HEAD", "read"),
    ("POST", "write"),
    ("PUT", "write"),
    ("PATCH", "write"),
    ("DELETE", "delete"),
)


def _default_routes() -> tuple[Route, ...]:
    prefix = r"^/(?:v[0-9.]+/)?(?:me|users/[^/]+)/"
    collections = {
        "messages": "messages|threads|conversations",
        "contacts": "contacts|friends",
        "profile": "profile",
        "photos": "photos",
        "events": "events",
    }
    return tuple(
        Route(prefix + f"(?:{names})(?:/|$)", resource) for resource, names in collections.items()
    )


# Secret-like names (SPEC §4), compared percent-decoded, in any case and without `-`/`_`
# (`api_key` covers apikey, API-Key, api%5Fkey); `name*` also covers names starting so, `*name`
# names ending so. `secret_params_extra` in access-audit.toml adds to these.
DEFAULT_SECRET_PARAMS = (
    "access_token",
    "refresh_token",
    "id_token",
    "token",
    "*token",  # csrf_token, session_token, oauth_token, x-goog-security-token, ...
    "code",
    "auth_code",
    "authorization_code",
    "device_code",
    "client_secret",
    "secret",
    "*secret",
    "password",
    "*password",
    "passwd",
    "*passwd",
    "pwd",
    "passphrase",
    "api_key",
    "apikey",
    "*apikey",  # x-api-key, subscription_apikey
    "key",
    "access_key",
    "secret_key",
    "private_key",
    "*privatekey",
    "subscription_key",
    "signing_key",
    "signature",
    "*signature",  # X-Amz-Signature, X-Goog-Signature
    "sig",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
    "X-Amz-Credential",
    "X-Goog-Signature",
    "X-Goog-Credential",
    "credential",
    "*credential",
    "credentials",
    "oauth_token",
    "oauth_verifier",
    "oauth_signature",
    "jwt",
    "session",
    "sessionid",
    "session_id",
    "*sessionid",
    "jsessionid",
    "phpsessid",
    "sid",
    "auth",
    "authorization",
    "proxy_authorization",
    "cookie",
    "set-cookie",
    "assertion",
    "client_assertion",
    "saml*",  # SAMLRequest, SAMLResponse, SAMLart
    "otp",
    "mfa_code",
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
    # S3 (landing or warehouse on s3://): endpoint and region only; credentials come from the
    # usual AWS variables or profile and are never settings (nothing secret reaches a manifest)
    s3_endpoint_url: str = ""  # empty: AWS_ENDPOINT_URL or AWS's own
    s3_region: str = ""
    message_resources: tuple[str, ...] = ("messages",)
    clock_skew_seconds: float = 0.0
    routes: tuple[Route, ...] = field(default_factory=_default_routes)
    method_actions: tuple[tuple[str, str], ...] = DEFAULT_METHOD_ACTIONS
    secret_params: tuple[str, ...] = DEFAULT_SECRET_PARAMS
    secret_params_extra: tuple[str, ...] = ()  # added to secret_params (access-audit.toml)
    body_fields: tuple[str, ...] = DEFAULT_BODY_FIELDS
    read_block_bytes: int = 64 * 1024 * 1024
    raw_max_chars: int = 4096
    duckdb_memory_limit: str = "1GB"
    detect_shard_rows: int = 2_000_000  # access rows per detection shard (bounds memory)
    detect_shards: int = 1  # a day's detection as this many units (mapped tasks) by user hash
    duckdb_threads: int = 0  # 0: one per core
    models_dir: str = str(PROJECT_ROOT / "models")
    anomaly_window_days: int = 28  # training window and trailing-median history
    anomaly_alerts_per_day: float = 1.0  # alert budget per entity kind (model's thresholds)
    # review store: SQLAlchemy URL (sqlite:///… embedded, postgresql+psycopg://… shared)
    review_db: str = "sqlite:///" + str(PROJECT_ROOT / "review.db")
    review_url: str = "http://127.0.0.1:8000"  # where the review UI is reached (report links)
    review_users: tuple[ReviewUser, ...] = ()  # standalone UI logins ([[review_users]] tables)
    # [[sources]]: where records in real formats land; none: canonical access/ and consent/
    sources: tuple[Source, ...] = ()
    coverage_alert_share: float = 0.2  # a partner's unjudged share of accesses that alerts
    review_session_secret: str = ""  # signs UI sessions; empty: a new one each start
    # alerts (sent through Airflow notifiers; nothing is sent unless a connection is named)
    alert_min_severity: str = "high"  # flags at or above this severity count towards an alert
    alert_flag_threshold: int = 1  # alert when at least this many such flags
    alert_max_quarantine_share: float = 0.05  # input counts as incomplete above this share
    alert_smtp_conn_id: str = ""
    alert_email_to: tuple[str, ...] = ()
    alert_slack_conn_id: str = ""

    @property
    def secret_names(self) -> tuple[str, ...]:
        """Every secret-like name: the list and its user additions."""
        return tuple(dict.fromkeys(self.secret_params + self.secret_params_extra))

    def to_dict(self) -> dict[str, Any]:
        """The settings as recorded in manifests: no password or secret in them."""
        data = dataclasses.asdict(self)
        data["review_db"] = redact_url_password(self.review_db)
        data["review_users"] = [user.name for user in self.review_users]
        data["review_session_secret"] = "REDACTED" if self.review_session_secret else ""
        return data


_STRUCTURED = ("routes", "method_actions", "review_users", "sources")
_SIMPLE_FIELDS = {f.name: f for f in dataclasses.fields(Settings) if f.name not in _STRUCTURED}


def _coerce(name: str, value: Any) -> Any:
    default = getattr(Settings(), name)
    try:
        if isinstance(default, tuple):
            if isinstance(value, str):
                value = [v for v in value.replace(",", " ").split() if v]
            if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                raise TypeError
            return tuple(value)
        if isinstance(value, bool) or isinstance(default, bool):
            raise TypeError
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        if not isinstance(value, str):
            raise TypeError
        return value
    except (TypeError, ValueError):
        raise ConfigError(
            f"setting {name!r}: {value!r} is not a valid {type(default).__name__}"
        ) from None


def _routes(raw: Any) -> tuple[Route, ...]:
    if not isinstance(raw, list):
        raise ConfigError("setting 'routes' must be a list of tables")
    routes = []
    for i, entry in enumerate(raw, 1):
        if not isinstance(entry, dict) or not {"path_regex", "resource"} <= entry.keys():
            raise ConfigError(f"routes entry {i}: needs path_regex and resource (action optional)")
        action = entry.get("action")
        if action is not None and action not in ACTIONS:
            raise ConfigError(f"routes entry {i}: action must be one of {', '.join(ACTIONS)}")
        routes.append(Route(str(entry["path_regex"]), str(entry["resource"]), action))
    return tuple(routes)


def _review_users(raw: Any) -> tuple[ReviewUser, ...]:
    if not isinstance(raw, list):
        raise ConfigError("setting 'review_users' must be a list of tables")
    users = []
    for i, entry in enumerate(raw, 1):
        if not isinstance(entry, dict) or not {"name", "password_hash"} <= entry.keys():
            raise ConfigError(
                f"review_users entry {i}: needs name and password_hash (role optional)"
            )
        role = entry.get("role", "viewer")
        if role not in REVIEW_ROLES:
            raise ConfigError(
                f"review_users entry {i}: role must be one of {', '.join(REVIEW_ROLES)}"
            )
        if not str(entry["password_hash"]).startswith("$argon2"):
            raise ConfigError(
                f"review_users entry {i}: password_hash must be an argon2 hash "
                "(make one with `access-audit hash-password`)"
            )
        users.append(ReviewUser(str(entry["name"]), str(entry["password_hash"]), role))
    return tuple(users)


def _sources(raw: Any) -> tuple[Source, ...]:
    if not isinstance(raw, list):
        raise ConfigError("setting 'sources' must be a list of tables ([[sources]])")
    sources: list[Source] = []
    for i, entry in enumerate(raw, 1):
        if not isinstance(entry, dict) or not {"name", "kind", "format"} <= entry.keys():
            raise ConfigError(f"sources entry {i}: needs name, kind and format")
        unknown = set(entry) - {f.name for f in dataclasses.fields(Source)}
        if unknown:
            raise ConfigError(f"sources entry {i}: unknown key(s) {', '.join(sorted(unknown))}")
        if not all(isinstance(v, str) for v in entry.values()):
            raise ConfigError(f"sources entry {i}: every value must be a string")
        source = Source(**entry)
        if source.kind not in SOURCE_KINDS:
            raise ConfigError(f"sources entry {i}: kind must be one of {', '.join(SOURCE_KINDS)}")
        if source.format not in FORMATS:
            raise ConfigError(f"sources entry {i}: format must be one of {', '.join(FORMATS)}")
        if source.format == "canonical" and source.kind == "both":
            raise ConfigError(f"sources entry {i}: a canonical source is access or consent")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", source.name):
            raise ConfigError(f"sources entry {i}: name {source.name!r} must be a plain word")
        if any(s.name == source.name for s in sources):
            raise ConfigError(f"sources entry {i}: name {source.name!r} is used twice")
        sources.append(source)
    return tuple(sources)


def _method_actions(raw: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, dict) or not all(a in ACTIONS for a in raw.values()):
        raise ConfigError(
            f"setting 'method_actions' must map HTTP methods to one of {', '.join(ACTIONS)}"
        )
    return tuple((str(method).upper(), action) for method, action in raw.items())


MINIMUMS = {
    "clock_skew_seconds": 0,
    "read_block_bytes": 1 << 16,
    "raw_max_chars": 64,
    "duckdb_threads": 0,
    "detect_shard_rows": 1,
    "detect_shards": 1,
    "alert_flag_threshold": 1,
    "alert_max_quarantine_share": 0,
    "coverage_alert_share": 0,
}


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
            elif name == "method_actions":
                values["method_actions"] = _method_actions(value)
            elif name == "review_users":
                values["review_users"] = _review_users(value)
            elif name == "sources":
                values["sources"] = _sources(value)
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
    if settings.alert_min_severity not in SEVERITIES:
        raise ConfigError(f"setting 'alert_min_severity' must be one of {', '.join(SEVERITIES)}")
    from pipeline.ingest.redact import check_names  # (light: re and urllib only)

    if bad := check_names(settings.secret_names):
        raise ConfigError(
            f"secret names {', '.join(map(repr, bad))}: a name needs a letter or digit, "
            "and `*` only at its start or end"
        )
    for name, least in MINIMUMS.items():
        if getattr(settings, name) < least:
            raise ConfigError(f"setting {name!r} must be at least {least}")
    return settings
