"""Removing secrets and message content from text before anything is stored (RE2 patterns, as
DuckDB's regexp_replace and pyarrow.compute run them: one pass per pattern over a column).

What a secret is (SPEC §4). A *name* is a run of name characters — ASCII letters, digits, `-`,
`_`, or a `%XX` that encodes one — with no name character right before it. It is secret-like
when, percent-decoded, lower-cased and with `-`/`_` left out, it equals a configured name
(also normalised so), starts with a configured `prefix*` or ends with a configured `*suffix`.
The value of a secret-like name is replaced by REDACTED:
- in a path: `name=value` (also `%3D`, `%253D`), the value up to the next `&`, `#` or `;`;
- in other text (user agents, free-text fields, quarantine details and raw lines):
  `name=v`, `name = v`, `name: v`, `"name": "v"`, `{'name': 'v'}`, `\\"name\\": \\"v\\"` (JSON
  inside a JSON string), `<name>v</name>`; a quoted value to its closing quote, a `[`/`{` value
  with the rest of the text (what it holds cannot be told for sure), a bare value up to the next
  `&`, `,`, `"`, `\\` or line break (whitespace ends nothing for sure);
- anywhere: the credential after `Bearer`, `Basic`, `Digest`, `Negotiate`, `NTLM` or `Token`,
  and values shaped like a credential (a JWT, an AWS access key id, GitHub/Slack/Stripe/Google
  keys, a PEM private key).
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # this module stays light to import: config.py uses it
    import pyarrow as pa

REDACTED = "REDACTED"

# A name character (under (?i)); text has its %XX escapes of name characters decoded first.
_NAME_CHAR = r"[a-z0-9_-]"
_SEPARATORS = r"[-_]*"  # left out of a name before comparing
# What may stand right before a name: the start, any other character, a %XX (what is left
# encoded after decoding name characters is none: a nested, encoded URL's %3F or %26), or a
# doubly encoded one (%253F).
_BOUNDARY = r"(?:^|[^a-z0-9_-]|%[0-9a-f]{2}|%25[0-9a-f]{2})"
# %XX escapes of name characters (2D '-', 30-39, 41-5A, 5F '_', 61-7A), decoded before matching
# (RFC 3986 §6.2.2.2 makes a URI with them decoded the same URI).
ENCODED_NAME_CHAR = r"(?i)%(?:2d|3[0-9]|4[1-9a-f]|5[0-9af]|6[1-9a-f]|7[0-9a])"
NAME_CHARS = "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
_QUOTE = r"(?:\\*[\"'])?"  # around a name: ", ' or \" (JSON within JSON: \\\" too)
_TEXT_ASSIGN = r"\s*(?:[:=]|%3[ad]|%253[ad])\s*"
_PATH_ASSIGN = r"(?:=|%3d|%253d)"
AUTH_SCHEMES = ("bearer", "basic", "digest", "negotiate", "ntlm", "token")
# Credentials recognisable by their shape alone, whatever they are stored under.
CREDENTIAL_SHAPES = (
    r"eyj[a-z0-9_-]{4,}\.[a-z0-9_-]{4,}\.?[a-z0-9_-]*",  # a JWT (base64url of '{"')
    r"\b(?:akia|asia)[0-9a-z]{16}\b",  # AWS access key id
    r"\bgh[pousr]_[a-z0-9]{20,}",  # GitHub
    r"\bxox[abposr]-[a-z0-9-]{10,}",  # Slack
    r"\b[rs]k_(?:live|test)_[a-z0-9]{10,}",  # Stripe
    r"\baiza[0-9a-z_-]{30,}",  # Google API key
    r"-----begin [a-z ]*private key-----.*",  # PEM, with the rest of the text
)


def normalise(name: str) -> str:
    """A name as names are compared: percent-decoded, lower-cased, without `-` and `_`."""
    decoded = urllib.parse.unquote(name)
    return "".join(c for c in decoded.lower() if c not in "-_")


def check_names(names: Iterable[str]) -> list[str]:
    """The names that cannot be used (nothing left of them once normalised, or `*` elsewhere
    than at one end): they would match every name or none."""
    bad = []
    for name in names:
        core = name[1:] if name.startswith("*") else name
        core = core[:-1] if core.endswith("*") and not name.startswith("*") else core
        if not normalise(core) or "*" in core:
            bad.append(name)
    return bad


def _char(c: str) -> str:
    """One character of a normalised name, then any separators."""
    return re.escape(c) + _SEPARATORS


def _tree(names: Iterable[str]) -> str:
    """The names as one alternation factored into a prefix tree (a(?:ccess…|uth…)…): it
    matches the same text, and RE2 finds the groups of a match far faster when at most one
    branch can go on at each character."""
    tree: dict[str, dict] = {}
    for name in dict.fromkeys(names):
        node = tree
        for char in name:
            node = node.setdefault(char, {})
        node[""] = {}  # a name ends here
    return _branches(tree)


def _branches(node: dict[str, dict]) -> str:
    branches = [_char(char) + _branches(child) for char, child in sorted(node.items()) if char]
    if not branches:
        return ""
    if "" in node:
        return f"(?:{'|'.join(branches)})?"
    return branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"


def name_pattern(names: Iterable[str]) -> str:
    """A secret-like name (see the module docstring), without (?i)."""
    exact, prefixes, suffixes = [], [], []
    for name in names:
        if name.startswith("*"):
            suffixes.append(normalise(name[1:]))
        elif name.endswith("*"):
            prefixes.append(normalise(name[:-1]))
        else:
            exact.append(normalise(name))
    parts = []
    if exact:
        parts.append(_tree(exact))
    if prefixes:
        parts.append(f"{_tree(prefixes)}{_NAME_CHAR}*")
    if suffixes:
        parts.append(f"{_NAME_CHAR}*{_tree(suffixes)}")
    return _SEPARATORS + "(?:" + "|".join(parts) + ")"


def path_secret_pattern(names: Iterable[str]) -> str:
    """`name=value` in a path; group 1 keeps what comes before the value."""
    return rf"(?i)({_BOUNDARY}(?:{name_pattern(names)}){_PATH_ASSIGN})[^&#;]+"


# Where a secret-like name's value starts, for a moment: a noncharacter, replaced in the text
# first, so that a line cannot forge one. The long name pattern then runs once per text, and
# each value form after it is a short pattern of its own.
_START = "\ufdd1"
_START_RE = r"\x{fdd1}"


def _text_prefix(names: Iterable[str]) -> str:
    """A secret-like name and what ties a value to it: `name=`, `"name": `, `<name>`, ..."""
    return (
        rf"((?:{_BOUNDARY}{_QUOTE}|<\s*)(?:{name_pattern(names)})"
        rf"(?:{_QUOTE}{_TEXT_ASSIGN}|\s*>\s*))"
    )


# Each value form that may follow a marked start, with what replaces it.
_TEXT_VALUES = (
    (r"\\+\"(?:[^\"\\]|\\+[^\"\\])*(?:\\+\")?", r'\\"' + REDACTED + r'\\"'),
    (r"\"(?:[^\"\\]|\\.)*\"?", '"' + REDACTED + '"'),
    (r"'(?:[^'\\]|\\.)*'?", "'" + REDACTED + "'"),
    (r"[\[{].*", '"' + REDACTED + '" (the rest is dropped)'),
    (r"(?:[^\s\"'\\,&\[{]|\\.)(?:[^\"\\,&\r\n]|\\.)*", REDACTED),
)


def text_secret_patterns(names: Iterable[str]) -> list[tuple[str, str]]:
    """(pattern, replacement) pairs for secrets in free text, applied in this order: credentials
    without a name, then each secret-like name's value marked and replaced (quoted forms first,
    so the bare form never sees a quote)."""
    values = [(rf"(?s){_START_RE}{value}", replacement) for value, replacement in _TEXT_VALUES]
    return [
        (_START_RE, "\ufffd"),
        *common_patterns(),
        (rf"(?i){_text_prefix(list(names))}", r"\1" + _START),
        *values,
        (_START_RE, ""),  # a name with no value after it
    ]


def common_patterns() -> list[tuple[str, str]]:
    """Credentials found without a name: after an auth scheme, or by their shape (one pass:
    the second group, always empty, stands where a shape has no scheme to keep)."""
    schemes = "|".join(AUTH_SCHEMES)
    stops = r"\s\"'\\,;&()<>{}\[\]"  # what ends a credential (token68 and base64 hold none)
    auth = rf"(\b(?:{schemes})(?:\s|%20|\+)+)[^{stops}=:][^{stops}]*"
    shapes = "|".join(f"(?:{s})" for s in CREDENTIAL_SHAPES)
    return [(rf"(?is){auth}|(){shapes}", r"\1\2" + REDACTED)]


# What the common patterns need to find anything (a cheap pass that skips them on most text).
COMMON_PREFILTER = (
    r"(?i)\b(?:" + "|".join(AUTH_SCHEMES) + r")(?:\s|%20|\+)|eyj|akia|asia|gh[pousr]_|xox"
    r"|k_live|k_test|aiza|-----"
)


def path_patterns(names: Iterable[str]) -> list[tuple[str, str]]:
    return [*common_patterns(), (path_secret_pattern(names), r"\1" + REDACTED)]


def prefilter_pattern(assign: str = "[=:]|%3[ad]|%253[ad]") -> str:
    """Text that any pattern could change holds an assignment, `<` or what the common patterns
    need: one cheap pass over a column picks the few values worth the full passes."""
    return rf"(?i){assign}|<|" + COMMON_PREFILTER.removeprefix("(?i)")


def _sql_quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def decoded_sql(column: str) -> str:
    """`column` with the %XX escapes of name characters decoded: every `%` is escaped as %25,
    those escapes are restored, and url_decode undoes just them (so any other escape, or a
    stray `%`, is kept as it was)."""
    escaped = f"replace({column}, '%', '%25')"
    name_escape = _sql_quote("(?i)%25(" + ENCODED_NAME_CHAR.removeprefix("(?i)%") + ")")
    restored = f"regexp_replace({escaped}, {name_escape}, '%\\1', 'g')"
    return f"url_decode({restored})"


def _replaced_sql(column: str, pairs: list[tuple[str, str]]) -> str:
    expression = column
    for pattern, replacement in pairs:
        expression = (
            f"regexp_replace({expression}, {_sql_quote(pattern)}, {_sql_quote(replacement)}, 'g')"
        )
    return expression


def text_sql(column: str, names: Iterable[str], prefilter: bool = True) -> str:
    """DuckDB SQL for `column` with every secret it could carry as text replaced, and its
    escaped name characters decoded (the prefilter lets every text with a `%` through)."""
    replaced = _replaced_sql(decoded_sql(column), text_secret_patterns(list(names)))
    if not prefilter:
        return replaced
    test = _sql_quote(prefilter_pattern() + "|%")
    return f"CASE WHEN regexp_matches({column}, {test}) THEN {replaced} ELSE {column} END"


def path_sql(column: str, names: Iterable[str]) -> str:
    """DuckDB SQL for a path column with its secret parameters and credentials replaced, and
    its escaped name characters decoded. Each stage runs only on the paths it could change
    (most paths hold a parameter: the name pattern's pass is the one every such path pays)."""
    decoded = f"CASE WHEN contains({column}, '%') THEN {decoded_sql(column)} ELSE {column} END"
    ((common, common_with),) = common_patterns()
    credentials = (
        f"CASE WHEN regexp_matches({decoded}, {_sql_quote(COMMON_PREFILTER)}) "
        f"THEN regexp_replace({decoded}, {_sql_quote(common)}, {_sql_quote(common_with)}, 'g') "
        f"ELSE {decoded} END"
    )
    pattern, replacement = (
        _sql_quote(path_secret_pattern(list(names))),
        _sql_quote(r"\1" + REDACTED),
    )
    return (
        f"CASE WHEN contains({credentials}, '=') OR contains({credentials}, '%') "
        f"THEN regexp_replace({credentials}, {pattern}, {replacement}, 'g') "
        f"ELSE {credentials} END"
    )


def redact_text_array(values: pa.Array | pa.ChunkedArray, names: Iterable[str]) -> Any:
    """The same replacements over a pyarrow string array (pyarrow.compute runs RE2 too), for
    text stored elsewhere than in ingest."""
    import pyarrow.compute as pc

    for char in NAME_CHARS:
        for hex_ in dict.fromkeys((f"{ord(char):02X}", f"{ord(char):02x}")):
            values = pc.replace_substring(values, f"%{hex_}", char)
    for pattern, replacement in text_secret_patterns(names):
        values = pc.replace_substring_regex(values, pattern, replacement)
    return values


def json_body_pattern(body_fields: Iterable[str]) -> str:
    """Members that may hold message content, in text that is not a JSON object: a string value
    is replaced; an object or list value, with everything after it on the line."""
    fields = _tree(normalise(f) for f in body_fields)
    return rf"(?i)(\"(?:{fields})\"\s*:\s*)(?:\"(?:[^\"\\]|\\.)*\"?|[\[{{].*$)"
