"""Removing secrets and message content from text before anything is stored (RE2 patterns)."""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "REDACTED"


def _names(names: Iterable[str]) -> str:
    """The names as one alternation factored into a prefix tree (a(?:ccess_token|uth(?:…)?)…):
    it matches the same text, and RE2 finds the groups of a match far faster when at most one
    branch can go on at each character."""
    tree: dict[str, dict] = {}
    for name in dict.fromkeys(names):
        node = tree
        for char in name:
            node = node.setdefault(char, {})
        node[""] = {}  # a name ends here
    return _branches(tree)


def _branches(node: dict[str, dict]) -> str:
    branches = [re.escape(char) + _branches(child) for char, child in sorted(node.items()) if char]
    if not branches:
        return ""
    if "" in node:
        return f"(?:{'|'.join(branches)})?"
    return branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"


def url_secret_pattern(secret_params: Iterable[str]) -> str:
    """Query, fragment or matrix parameters of a path such as ?access_token=…; group 1 keeps
    the name and '='. The value runs to the next parameter."""
    return rf"(?i)([?&#;](?:{_names(secret_params)})=)[^&#;]*"


def text_url_secret_pattern(secret_params: Iterable[str]) -> str:
    """The same parameters in raw text, JSON or not: a value also ends where its JSON string
    does (an unescaped double quote). Where a URL ends in other text cannot be told, so
    whitespace does not end a value: more is removed rather than less."""
    return rf"(?i)([?&#;](?:{_names(secret_params)})=)(?:[^&#;\"\\]|\\.)*"


def json_secret_pattern(secret_params: Iterable[str]) -> str:
    """Members named like a secret ("password": "…", or anything else up to the next comma or
    bracket: in a broken line, whitespace ends nothing for sure); group 1 keeps the key."""
    return (
        rf"(?i)(\"(?:{_names(secret_params)})\"\s*:\s*)"
        rf"(?:\"(?:[^\"\\]|\\.)*\"?|[^,}}\]]+)"
    )


def json_body_pattern(body_fields: Iterable[str]) -> str:
    """Members that may hold message content, in text that is not a JSON object: a string value
    is replaced; an object or list value, with everything after it on the line."""
    return rf"(?i)(\"(?:{_names(body_fields)})\"\s*:\s*)(?:\"(?:[^\"\\]|\\.)*\"?|[\[{{].*$)"
