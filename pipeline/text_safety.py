"""Partner-controlled text made safe for each place it is shown or stored.

Every field of the landing zone is written by partners, so a name or id may hold markup, Slack
control sequences, mathtext, spreadsheet formulas, NUL bytes or Unicode direction overrides.
Each helper makes text inert for one destination and keeps it readable; apply the one for where
the text goes, at the moment it goes there (not to what is stored in the warehouse).
"""

from __future__ import annotations

import html
import re
import unicodedata

import pyarrow as pa
import pyarrow.compute as pc

# Unicode direction controls: embeddings and overrides (U+202A-202E), isolates (U+2066-2069),
# the marks (U+200E/F, U+061C). Rendered raw they reorder what follows, so `gpj.exe` can read
# as `exe.jpg` and one partner's name can pass for another's.
BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
_VISIBLE_BIDI = {ord(c): f"<U+{ord(c):04X}>" for c in BIDI_CONTROLS}


def visible_bidi(s: str) -> str:
    """Direction controls shown as `<U+202E>`, so they no longer reorder the text around them."""
    return s.translate(_VISIBLE_BIDI)


def visible_bidi_array(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """visible_bidi over a string column (no Python object per value)."""
    for char in BIDI_CONTROLS:
        values = pc.replace_substring(values, char, f"<U+{ord(char):04X}>")
    return values


# Slack reads `<...>` as a link or a mention (`<!channel>`, `<@U123>`, `<https://x|label>`) and
# `&` as the start of an entity; its documented escaping is these three. A bare @channel or @here
# notifies where a message is sent with link_names: a word joiner after the @ keeps it a word.
_SLACK = {ord("&"): "&amp;", ord("<"): "&lt;", ord(">"): "&gt;"}
_SLACK_MENTION = re.compile(r"@(?=(?:channel|here|everyone)\b)", re.IGNORECASE)


def slack_escape(s: str) -> str:
    """Text for a Slack message: no link, mention or entity that the text did not mean."""
    return _SLACK_MENTION.sub("@\u2060", s.translate(_SLACK))


def markdown_text(s: str) -> str:
    """Text for a Markdown page (the digest): `<`, `>` and `&` as entities, so a name holding
    markup, `<!channel>` or `<https://x|y>` shows as itself and never renders live."""
    return html.escape(s, quote=False)


def mathtext_safe(s: str) -> str:
    """Text for a matplotlib label: every `$` escaped, so no pair of them starts mathtext.

    matplotlib parses text as math when it holds an even number (> 0) of `$` not written `\\$`;
    with each written `\\$` there are none, and it shows each `\\$` as `$`.
    """
    return s.replace("$", r"\$")


# What spreadsheets may read as the start of a formula (=, +, -, @, their full-width forms, and
# the DDE pipe), or skip over before one: whitespace, line breaks, NUL and other controls,
# invisible format characters (ZWSP, BOM, word joiner).
_FORMULA_STARTS = frozenset("=+-@|%\uff1d\uff0b\uff0d\uff20\ufe62\ufe63\u2212")


def _unsafe_start(char: str) -> bool:
    # separators (Z*) and every other (C*): controls, format, private use, unassigned
    return char in _FORMULA_STARTS or unicodedata.category(char)[0] in "ZC"


def csv_cell(s: str) -> str:
    """A text cell a spreadsheet will not run: one starting with a formula character, or with
    anything a spreadsheet may skip before one, gets a leading `'` (shown by none of them as a
    formula). The CSV writer still quotes the cell where it holds commas, quotes or breaks."""
    if s and _unsafe_start(s[0]):
        return "'" + s
    return s


def pg_text(s: str) -> str:
    """Text PostgreSQL will store: NUL (which a text column refuses) shown as U+2400 ␀."""
    return s.replace("\x00", "\u2400")


def pg_text_array(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """pg_text over a string column."""
    return pc.replace_substring(values, "\x00", "\u2400")
