"""The secret patterns name their parameters as a prefix tree (for RE2's speed); they must match
exactly what the plain alternation of the same names matches."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from pipeline import redact

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
