"""The secret patterns name their parameters as a prefix tree (for RE2's speed); they must match
exactly what the plain alternation of the same names matches."""

from __future__ import annotations

import re

import duckdb
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.config import DEFAULT_SECRET_PARAMS, Settings
from pipeline.ingest import redact
from pipeline.ingest.validation import redact_path_sql

# Names that share prefixes (a, ab, abc) and letters of the text around them.
NAME = st.text(alphabet="abkt_=", min_size=1, max_size=5)
TEXT = st.text(alphabet="abkt_=?&#; x", max_size=40)


def _plain(names: list[str]) -> str:
    return "|".join(re.escape(n) for n in names)


@given(st.lists(NAME, min_size=1, max_size=6), TEXT)
def test_prefix_tree_matches_what_the_plain_alternation_matches(names: list[str], text: str):
    tree = re.compile(rf"(?:{redact._names(names)})")
    plain = re.compile(rf"(?:{_plain(names)})")
    assert [bool(tree.fullmatch(w)) for w in [*names, text]] == [
        bool(plain.fullmatch(w)) for w in [*names, text]
    ]


@given(st.lists(NAME.filter(lambda n: "=" not in n), min_size=1, max_size=6), TEXT)
def test_url_secrets_redacted_as_with_the_plain_alternation(names: list[str], text: str):
    rewritten = rf"(?i)([?&#;](?:{_plain(names)})=)[^&#;]*"
    expected = re.sub(rewritten, rf"\1{redact.REDACTED}", text)
    actual = re.sub(redact.url_secret_pattern(names), rf"\1{redact.REDACTED}", text)
    assert actual == expected


@pytest.mark.parametrize("name", DEFAULT_SECRET_PARAMS)
def test_every_default_secret_name_is_redacted_from_a_stored_path(name: str):
    """Each name the settings list by default (more than SPEC §2 names), in any case, through
    the SQL ingest runs (RE2, not Python's re); a name that only ends like one is kept."""
    sql = redact_path_sql("path", Settings())
    paths = [
        f"/v2/me/messages?page=1&{name}=S3CRET-1&x=2",
        f"/v2/me/messages;{name.upper()}=S3CRET-2",
        f"/v2/me/messages?my{name}=kept",
    ]
    stored = [
        row[0]
        for row in duckdb.sql(
            f"SELECT {sql} FROM (SELECT unnest(?) AS path)", params=[paths]
        ).fetchall()
    ]
    assert stored == [
        f"/v2/me/messages?page=1&{name}={redact.REDACTED}&x=2",
        f"/v2/me/messages;{name.upper()}={redact.REDACTED}",
        f"/v2/me/messages?my{name}=kept",
    ]
