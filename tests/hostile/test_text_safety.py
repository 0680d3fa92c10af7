"""pipeline.text_safety against the real destinations: matplotlib's renderer, Python's csv
module as spreadsheets read it, Slack's escaping rules, PostgreSQL's text type."""

from __future__ import annotations

import csv
import html
import io
import re
import unicodedata

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from matplotlib import cbook

from pipeline.text_safety import (
    BIDI_CONTROLS,
    csv_cell,
    markdown_text,
    mathtext_safe,
    pg_text,
    pg_text_array,
    slack_escape,
    visible_bidi,
    visible_bidi_array,
)

HOSTILE = st.text(
    st.sampled_from(list("$\\^_{}ab =+-@<>&|!\t\r\n\x00 \u200b\ufeff\uff1d"))
    | st.characters(exclude_categories=("Cs",)),
    max_size=30,
)


def _render_label(text: str) -> str:
    """Draw `text` as a tick label and a title, as the report's charts do, and return the SVG."""
    figure, axes = plt.subplots()
    try:
        axes.set_yticks([0], [text])
        axes.set_title(text)
        out = io.StringIO()
        with matplotlib.rc_context({"svg.fonttype": "none"}):
            figure.savefig(out, format="svg")
        return out.getvalue()
    finally:
        plt.close(figure)


def test_unescaped_mathtext_really_breaks_a_chart():
    """The failure issue 13 saw (so the next test can tell a fix from luck)."""
    with pytest.raises(ValueError):
        _render_label(r"Evil $\frac{$ Corp")


@pytest.mark.parametrize("name", [r"Evil $\frac{$ Corp", "$x$", "$$", r"a\$b$c$", "$^$", "$_"])
def test_mathtext_safe_text_renders_literally(name: str):
    svg = _render_label(mathtext_safe(name))
    assert not cbook.is_math_text(mathtext_safe(name))
    assert name.replace("&", "&amp;").replace("<", "&lt;") in svg or "$" not in name


@given(HOSTILE)
def test_no_partner_name_is_read_as_mathtext(name: str):
    assert not cbook.is_math_text(mathtext_safe(name))


def test_bidi_controls_are_shown_not_obeyed():
    assert visible_bidi("Stream\u202eflix\u2066x\u2069") == "Stream<U+202E>flix<U+2066>x<U+2069>"


@settings(deadline=None)
@given(HOSTILE | st.text(st.sampled_from(BIDI_CONTROLS + "ab"), max_size=10))
def test_no_direction_control_survives(text: str):
    shown = visible_bidi(text)
    assert not any(c in BIDI_CONTROLS for c in shown)
    assert not any(
        unicodedata.bidirectional(c) in ("LRE", "RLE", "LRO", "RLO", "PDF") for c in shown
    )
    assert visible_bidi_array(pa.array([text])).to_pylist() == [shown]


@pytest.mark.parametrize(
    ("text", "sent"),
    [
        ("<!channel> hi", "&lt;!channel&gt; hi"),
        ("<https://evil.example|Your bank>", "&lt;https://evil.example|Your bank&gt;"),
        ("Tom & Jerry <@U123>", "Tom &amp; Jerry &lt;@U123&gt;"),
        ("&lt;", "&amp;lt;"),
    ],
)
def test_slack_text_is_inert(text: str, sent: str):
    assert slack_escape(text) == sent


@given(HOSTILE)
def test_slack_escaped_text_opens_no_link_or_mention(text: str):
    sent = slack_escape(text)
    assert "<" not in sent and ">" not in sent
    assert "@channel" not in sent.lower() and "@here" not in sent.lower()
    # every & starts one of the three entities Slack decodes
    assert sent.count("&") == sum(sent.count(e) for e in ("&amp;", "&lt;", "&gt;"))


FORMULA_STARTS = "=+-@\t\r\n\x00 \u00a0\u200b\ufeff\uff1d\uff0b\uff0d\uff20|%"


@pytest.mark.parametrize("start", list(FORMULA_STARTS))
def test_a_csv_cell_never_starts_a_formula(start: str):
    cell = csv_cell(start + "SUM(A1:A9)")
    assert cell.startswith("'")
    out = io.StringIO()
    csv.writer(out).writerow([cell, "x"])
    (read,) = list(csv.reader(io.StringIO(out.getvalue())))
    assert read[0] == cell  # the writer's quoting keeps a leading break or NUL inside the cell


@given(HOSTILE)
def test_csv_cells_start_with_no_formula_character(text: str):
    cell = csv_cell(text)
    assert cell == text or cell == "'" + text
    if cell:
        first = cell[0]
        assert first == "'" or (
            first not in FORMULA_STARTS and unicodedata.category(first)[0] not in "ZC"
        )


def test_plain_cells_are_kept():
    assert [csv_cell(t) for t in ("Streamflix", "app-1", "", "1.5")] == [
        "Streamflix",
        "app-1",
        "",
        "1.5",
    ]


@settings(deadline=None)
@given(HOSTILE)
def test_pg_text_has_no_nul(text: str):
    assert "\x00" not in pg_text(text)
    assert pg_text_array(pa.array([text])).to_pylist() == [pg_text(text)]
    assert pg_text("a\x00b") == "a\u2400b"


def test_a_slack_alert_is_sent_escaped():
    from pipeline.report.notifications import Alert

    alert = Alert("high_severity_flags", "2 flags <!channel>", "Partner <https://evil|bank> \u202e")
    sent = "*2 flags &lt;!channel&gt;*\nPartner &lt;https://evil|bank&gt; &lt;U+202E&gt;"
    assert alert.slack_text() == sent  # the visible mark is escaped too


@pytest.mark.parametrize(
    "name",
    ["<script>alert(1)</script>", "<!channel>", "<https://evil.example|bank>", "a & <b>co</b>"],
)
def test_markdown_text_renders_as_itself_never_as_markup(name: str):
    # CommonMark passes raw HTML and autolinks through: unescaped, these would be live tags or
    # links in the digest
    rendered = MarkdownIt("commonmark").render(markdown_text(name))
    assert "<script" not in rendered and "<!channel" not in rendered and "<https" not in rendered
    assert html.unescape(re.sub(r"</?p>", "", rendered)).strip() == name
