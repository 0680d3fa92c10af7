"""Secrets (SPEC §4) against a plain reading: which names are secret-like, and that no secret
value survives the SQL ingest runs (RE2, not Python's re) in any stored column or quarantined
raw line, whatever the name's case, separators, encoding and the syntax around it."""

from __future__ import annotations

import json
import re
import urllib.parse

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, Phase, given, note
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from pipeline import duck
from pipeline.config import DEFAULT_SECRET_PARAMS, Settings, load_settings
from pipeline.errors import ConfigError
from pipeline.ingest import redact
from pipeline.ingest.validation import (
    ACCESS_KIND,
    redact_path_sql,
    redact_text_sql,
    validation_sql,
)

SETTINGS = Settings(secret_params_extra=("Partner-Sig",))
MARK = "Qz7SECRETx"  # every secret value generated starts with it

# ---------------------------------------------------------------------------------------------
# The oracle for names


def normalised(name: str) -> str:
    return urllib.parse.unquote(name).lower().replace("-", "").replace("_", "")


def is_secret_name(name: str, configured: tuple[str, ...]) -> bool:
    """Percent-decoded, any case, `-`/`_` left out; `x*` starts a name, `*x` ends one."""
    name = normalised(name)
    for c in configured:
        if c.startswith("*") and name.endswith(normalised(c[1:])):
            return True
        if c.endswith("*") and not c.startswith("*") and name.startswith(normalised(c[:-1])):
            return True
        if "*" not in c and name == normalised(c):
            return True
    return False


def _expanded(name: str) -> str:
    """A configured name as written: `saml*` as samlresponse, `*token` as csrf_token."""
    if name.startswith("*"):
        return "csrf_" + name[1:]
    return name[:-1] + "Response" if name.endswith("*") else name


SECRET_NAMES = tuple(_expanded(n) for n in SETTINGS.secret_names)
NEAR_MISSES = ("tokens", "code_challenge", "access_token2", "keyboard", "page", "signed", "q")


@st.composite
def spelled(draw: st.DrawFn, name: str) -> str:
    """`name` as a partner may write it: each letter in either case, plainly or
    percent-encoded (either hex case), separators changed, doubled, added or left out."""
    out = []
    for char in name:
        if char in "-_":
            out.append(draw(st.sampled_from(["", "-", "_", "%5F", "%2d", "__"])))
            continue
        cased = draw(st.sampled_from([char.lower(), char.upper()]))
        if draw(st.integers(0, 4)) == 0:
            hex_ = f"{ord(cased):02X}"
            cased = "%" + draw(st.sampled_from([hex_, hex_.lower()]))
        out.append(cased)
    return "".join(out)


written_names = st.sampled_from(SECRET_NAMES + NEAR_MISSES).flatmap(spelled) | st.text(
    "akeytonspd_-%5F2", min_size=1, max_size=8
)


@given(written_names)
def test_a_name_is_secret_like_exactly_as_spec_section_4_says(name: str):
    """(Escaped name characters are decoded before the pattern runs, as in ingest.)"""
    pattern = "(?i)" + redact.name_pattern(SETTINGS.secret_names)
    matched = duckdb.sql(
        f"SELECT regexp_full_match({redact.decoded_sql('n')}, ?) FROM (SELECT ? AS n)",
        params=[pattern, name],
    ).fetchall()[0]
    assert matched is not None
    assert matched[0] == is_secret_name(name, SETTINGS.secret_names)


@pytest.mark.parametrize(
    "name",
    [
        "access_token",
        "X-Amz-Signature",
        "X-Amz-Security-Token",
        "X-Amz-Credential",
        "X-Goog-Signature",
        "X-Goog-Credential",
        "oauth_token",
        "oauth_verifier",
        "jwt",
        "api-key",
        "apikey",
        "accessToken",
        "access-token",
        "jsessionid",
        "PHPSESSID",
        "auth_code",
        "private_key",
        "pwd",
        "passwd",
        "id_token",
        "refresh_token",
        "client_secret",
        "sig",
        "signature",
        "session",
        "sessionid",
        "auth",
        "Authorization",
        "cookie",
        "Set-Cookie",
        "assertion",
        "SAMLResponse",
        "key",
        "code",
        "%61ccess_token",
        "access%5Ftoken",
        "pass%77ord",
    ],
)
def test_the_names_issue_13_found_missing_are_secret_like(name: str):
    assert is_secret_name(name, DEFAULT_SECRET_PARAMS)
    sql = redact_path_sql("p", Settings())
    (stored,) = duckdb.sql(
        f"SELECT {sql} FROM (SELECT ? AS p)", params=[f"/m?{name}=S3"]
    ).fetchall()[0]
    assert stored == f"/m?{urllib.parse.unquote(name)}=REDACTED"  # escaped letters decoded


def test_secret_names_are_extended_in_the_config_file(tmp_path):
    config = tmp_path / "access-audit.toml"
    config.write_text('secret_params_extra = ["x-partner-sig"]\n')
    settings = load_settings(config, env={})
    assert "access_token" in settings.secret_names and "x-partner-sig" in settings.secret_names
    sql = redact_path_sql("p", settings)
    (stored,) = duckdb.sql(
        f"SELECT {sql} FROM (SELECT ? AS p)", params=["/m?X_Partner_Sig=1"]
    ).fetchall()[0]
    assert stored == "/m?X_Partner_Sig=REDACTED"


@pytest.mark.parametrize("bad", ["", "-", "*", "a*b", "%5F"])
def test_a_secret_name_that_would_match_everything_is_refused(tmp_path, bad: str):
    config = tmp_path / "access-audit.toml"
    config.write_text(f"secret_params_extra = [{json.dumps(bad)}]\n")
    with pytest.raises(ConfigError, match="secret names"):
        load_settings(config, env={})


# ---------------------------------------------------------------------------------------------
# No secret value survives


TAIL = st.text("abcXYZ09-._~%+/=:; '\"\\&#,{}[]<>\n\t", max_size=6)
values = st.builds(lambda tail: MARK + tail, TAIL)


@st.composite
def url_fragments(draw: st.DrawFn) -> str:
    """`name=value` as a query, fragment, matrix or encoded nested URL parameter carries it."""
    name = draw(st.sampled_from(SECRET_NAMES).flatmap(spelled))
    before = draw(st.sampled_from(["?", "&", "#", ";", "/", "?a=1&", "%3F", "%26", "%253F"]))
    assign = draw(st.sampled_from(["=", "%3D", "%3d", "%253D"]))
    value = MARK + draw(st.text("abcXYZ09-._~%+/= ", max_size=5))
    return before + name + assign + value + draw(st.sampled_from(["", "&page=2", "#f", ";x=1"]))


@st.composite
def text_fragments(draw: st.DrawFn) -> str:
    """A secret in any syntax stored text carries it: header lines, JSON, Python reprs, JSON
    inside JSON, XML, auth schemes."""
    name = draw(st.sampled_from(SECRET_NAMES).flatmap(spelled))
    value = draw(values)
    plain = value.replace('"', "").replace("'", "").replace("\\", "")
    forms = [
        f"{name}={value}",
        f"{name} = {value}",
        f"{name}: {value}",
        f"{name}:{value}",
        f'"{name}": "{plain}"',
        f'"{name}":{json.dumps(value)}',
        f"{{'{name}': '{plain}'}}",
        f'{{\\"{name}\\": \\"{plain}\\"}}',
        f'"{name}": ["{plain}", "b"]',
        f'"{name}": {{"v": "{plain}"}}',
        f"<{name}>{plain}</{name}>",
        f"Authorization: Bearer {value}",
        f"authorization: basic {value}",
        f'"cookie": "session={plain}; theme=dark"',
        f"Cookie: a=1; {name}={value}",
        f"Bearer%20{value}",
        f"x {draw(st.sampled_from(['Bearer', 'BASIC', 'Token', 'Digest']))} {value}",
        f"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOi{MARK}.c2ln",
        f'["{name}={plain}"]',
    ]
    return draw(st.sampled_from(forms))


def _record(**fields: object) -> dict[str, object]:
    return {
        "request_id": "r1",
        "event_time": "2024-03-10T12:00:00Z",
        "app_id": "a1",
        "user_id": "u1",
        "resource": "messages",
        "action": "read",
        **fields,
    }


@st.composite
def secret_lines(draw: st.DrawFn) -> str:
    """One line whose only secret values start with MARK, in a valid record, a rejected one,
    a broken one, or as the line itself."""
    url, text = draw(url_fragments()), draw(text_fragments())
    path = "/v2/me/messages" + url
    valid = _record(path=path, user_agent=f"Mozilla/5.0 {text} x", thread_id=text)
    rejected = {**valid, "user_id": 1}
    line = draw(
        st.sampled_from(
            [
                json.dumps(valid),
                json.dumps(rejected),
                json.dumps(_record(action=text)),  # quoted in the quarantine's detail
                json.dumps(valid)[: -draw(st.integers(1, 3))] + ', "x',  # broken
                text,  # the line itself (a line starting with a name)
                url.lstrip("?&#;/"),
                json.dumps(["a", text]),  # a JSON array
                "{'request_id': 'r1', " + text,  # a Python repr
                '{"request_id": "r1", "note": "' + MARK + '", "x": 1',  # unknown key, broken
            ]
        )
    )
    return draw(st.sampled_from(["", " ", "\ufeff"])) + line + draw(st.sampled_from(["", "\r"]))


REDACTING_SQL = validation_sql(ACCESS_KIND, SETTINGS, redact_all=True)
STORED = ("path", "user_agent", "thread_id", "method", "ip", "detail", "raw_redacted")


# no shrinking: each example is a query, and the note shows the line that leaked
@hsettings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(st.lists(secret_lines(), min_size=1, max_size=10))
def test_no_secret_value_survives_in_any_stored_column_or_raw_line(lines: list[str]):
    batch = pa.table(
        {
            "source_line": pa.array(range(1, len(lines) + 1), pa.int64()),
            "raw": pa.array(lines, pa.large_string()),
            "encoding_ok": pa.array([True] * len(lines)),
        }
    )
    con = duck.connect(SETTINGS)
    con.register("batch", batch)
    rows = con.sql(REDACTING_SQL).to_arrow_table()
    con.close()
    for line, row in zip(lines, rows.to_pylist(), strict=True):
        note(f"{line!r} -> {row}")
        leaks = [column for column in STORED if MARK in (row[column] or "")]
        assert not leaks, f"{line!r}: the secret is in {leaks}: {row}"


# ---------------------------------------------------------------------------------------------
# What stays


def _text(values: list[str]) -> list[str]:
    sql = redact_text_sql("t", SETTINGS)
    return [
        r[0]
        for r in duckdb.sql(
            f"SELECT {sql} FROM (SELECT unnest(?) AS t)", params=[values]
        ).fetchall()
    ]


def test_text_without_secrets_is_kept_whole():
    kept = [
        "Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/118.0",
        "page=2&q=cats",
        '{"note": "keyboard: yes", "tokens": 3}',
        "/v2/me/messages?page=2",
    ]
    assert _text(kept) == kept


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("Authorization: Bearer abc.def", "Authorization: REDACTED"),
        ("app/1.0 (Bearer abc)", "app/1.0 (Bearer REDACTED)"),
        ('"password": "x", "page": 2', '"password": "REDACTED", "page": 2'),
        ("{'token': 'x', 'page': 2}", "{'token': 'REDACTED', 'page': 2}"),
        ("a=1&access_token=x&b=2", "a=1&access_token=REDACTED&b=2"),
        ('"secret": {"a": 1}, "b": 2', '"secret": "REDACTED" (the rest is dropped)'),
    ],
)
def test_what_a_redaction_keeps_around_the_secret(text: str, stored: str):
    assert _text([text]) == [stored]


def test_the_pyarrow_version_redacts_as_the_sql_does():
    texts = ["Authorization: Bearer abc", "a=1&pass%77ord=x", "plain"]
    assert redact.redact_text_array(pa.array(texts), SETTINGS.secret_names).to_pylist() == _text(
        texts
    )


def test_a_name_that_only_contains_a_secret_name_is_kept():
    sql = redact_path_sql("p", SETTINGS)
    paths = ["/m?tokens=1", "/m?keyboard=2", "/m?code_challenge=3", "/m?signed=4"]
    stored = [
        r[0]
        for r in duckdb.sql(f"SELECT {sql} FROM (SELECT unnest(?) AS p)", params=[paths]).fetchall()
    ]
    assert stored == paths
    assert not any(re.search(MARK, p) for p in stored)
