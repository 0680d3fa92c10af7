"""The report's charts as inline SVG (matplotlib): text stays text, no external reference, and
colours from the Okabe-Ito palette, which colour-blind readers can tell apart."""

from __future__ import annotations

import io
import re
from datetime import date
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot

import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
from matplotlib.figure import Figure

from pipeline.config import SEVERITIES
from pipeline.schema import RULES
from pipeline.text_safety import mathtext_safe, visible_bidi

OKABE_ITO = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#D55E00",  # vermillion
    "#F0E442",  # yellow
    "#000000",  # black
)
SEVERITY_COLOURS = dict(zip(SEVERITIES, ("#56B4E9", "#E69F00", "#D55E00", "#000000"), strict=True))
NO_DATA = "#e8e8e8"
STYLE: dict[Any, Any] = {  # matplotlib types its keys as a Literal of every rc name
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Liberation Sans", "Arial", "Helvetica"],
    "font.size": 11,
    "axes.titlesize": 13,
    "axes.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.fonttype": "none",  # text as <text>: sharp, selectable, small
}


def _label(text: str) -> str:
    """Partner-controlled text for a chart: no mathtext (`$…$` once failed the report), and
    direction overrides shown, not obeyed."""
    return mathtext_safe(visible_bidi(text))


def _svg(figure: Figure, name: str) -> str:
    """The figure as an <svg> element for inlining: no prolog, metadata or namespace URLs; ids
    salted by the chart's name so that several charts in one page never share one."""
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": name}):
        figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.DOTALL)
    svg = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", svg)
    return svg.replace("<svg", f'<svg role="img" aria-label="{name}"', 1)


def _day_labels(days: list[str]) -> list[str]:
    return [date.fromisoformat(d).strftime("%d %b") for d in days]


def _shade_days_without_data(axes: Any, has_data: list[bool]) -> None:
    for i, present in enumerate(has_data):
        if not present:
            axes.axvspan(i - 0.5, i + 0.5, color=NO_DATA, zorder=0, lw=0)


def flags_per_day_by_rule(trend: dict[str, Any]) -> str:
    """Stacked bars: flags per delivery day of the trend window, by rule."""
    days = trend["days"]
    with plt.rc_context(STYLE):
        figure, axes = plt.subplots(figsize=(12, 4.6))
        x = np.arange(len(days))
        bottom = np.zeros(len(days))
        for rule, counts in trend["by_rule"].items():  # a rule keeps its colour in every report
            colour = OKABE_ITO[RULES.index(rule) % len(OKABE_ITO)]
            axes.bar(x, counts, bottom=bottom, color=colour, label=rule)
            bottom += np.array(counts)
        _shade_days_without_data(axes, trend["has_data"])
        axes.set_xticks(x, _day_labels(days), rotation=60, ha="right", fontsize=9)
        axes.set_xlim(-0.6, len(days) - 0.4)
        axes.set_ylabel("flags")
        axes.set_title("Flags per delivery day, by rule (grey: no data)", loc="left")
        axes.grid(axis="y", color="#cccccc", lw=0.6)
        axes.set_axisbelow(True)
        if trend["by_rule"]:
            handles, labels = axes.get_legend_handles_labels()  # listed top of the stack first
            axes.legend(
                handles[::-1],
                labels[::-1],
                loc="upper left",
                bbox_to_anchor=(1.01, 1),
                frameon=False,
                fontsize=10,
            )
        return _svg(figure, "flags-per-day-by-rule")


def flags_per_day_by_partner(trend: dict[str, Any], names: dict[str, str]) -> str:
    """A heat map: one row per partner, one column per day, the flag count in each cell."""
    days, partners = trend["days"], list(trend["by_partner"])
    grid = np.array([trend["by_partner"][p] for p in partners] or [[0] * len(days)], dtype=float)
    rows = max(len(partners), 1)
    with plt.rc_context(STYLE):
        figure, axes = plt.subplots(figsize=(12, 1.2 + 0.45 * rows))
        shown = np.ma.masked_where(grid == 0, grid)
        peak = grid.max() or 1
        colours = matplotlib.colormaps["Blues"].with_extremes(bad="white")
        # the lightest blues would vanish on white: a single flag starts at a visible shade
        # vector cells (pcolormesh, not imshow): the SVG holds no embedded bitmap
        axes.pcolormesh(shown, cmap=colours, vmin=-0.25 * peak, vmax=peak)
        axes.set_ylim(len(partners) or 1, 0)
        for i, present in enumerate(trend["has_data"]):
            if not present:
                axes.axvspan(i, i + 1, color=NO_DATA, lw=0)
        for (row, col), n in np.ndenumerate(grid):
            if n:
                ink = "white" if n > peak * 0.45 else "black"
                axes.text(
                    col + 0.5,
                    row + 0.5,
                    f"{int(n)}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color=ink,
                )
        labels = [_label(f"{names[p]} ({p})" if p in names else p) for p in partners]
        axes.set_yticks(np.arange(len(partners)) + 0.5, labels, fontsize=10)
        axes.set_xticks(
            np.arange(len(days)) + 0.5, _day_labels(days), rotation=60, ha="right", fontsize=9
        )
        axes.set_title("Flags per delivery day, by partner (grey: no data)", loc="left")
        for side in ("left", "bottom"):
            axes.spines[side].set_visible(False)
        axes.tick_params(length=0)
        return _svg(figure, "flags-per-day-by-partner")


def flags_by_partner_and_severity(summary: dict[str, Any]) -> str:
    """Horizontal stacked bars: the period's flags per partner, by severity."""
    by_partner = summary["flags_by_partner_severity"]
    partners = sorted(by_partner, key=lambda p: summary["flags_by_partner"][p])
    names = summary["partner_names"]
    with plt.rc_context(STYLE):
        figure, axes = plt.subplots(figsize=(12, 1.4 + 0.45 * max(len(partners), 1)))
        y = np.arange(len(partners))
        left = np.zeros(len(partners))
        for severity in SEVERITIES:
            counts = np.array([by_partner[p].get(severity, 0) for p in partners])
            if counts.any():
                colour = SEVERITY_COLOURS[severity]
                axes.barh(y, counts, left=left, color=colour, label=severity, height=0.65)
                left += counts
        for row, total in enumerate(left):
            axes.text(total, row, f" {int(total):,}", va="center", fontsize=10)
        labels = [_label(f"{names[p]} ({p})" if p in names else p) for p in partners]
        axes.set_yticks(y, labels, fontsize=10)
        axes.set_xlabel("flags")
        axes.set_title("Flags by partner and severity", loc="left")
        axes.grid(axis="x", color="#cccccc", lw=0.6)
        axes.set_axisbelow(True)
        if partners:
            axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False, fontsize=10)
        return _svg(figure, "flags-by-partner-and-severity")


JUDGED_COLOUR = "#009E73"
REASON_COLOURS = ("#D55E00", "#E69F00", "#CC79A7", "#56B4E9", "#000000")


def coverage_by_partner(summary: dict[str, Any]) -> str:
    """Horizontal stacked bars: each partner's message accesses of the period as shares judged
    and not judged by reason, most unjudged at the top; its counts at the bar's end."""
    coverage = summary["coverage"]
    partners = coverage["by_partner"][::-1]  # barh draws bottom up
    with plt.rc_context(STYLE):
        figure, axes = plt.subplots(figsize=(12, 1.6 + 0.45 * max(len(partners), 1)))
        y = np.arange(len(partners))
        left = np.zeros(len(partners))
        totals = np.array([max(p["accesses"], 1) for p in partners], dtype=float)
        parts = [("judged", "judged", JUDGED_COLOUR)] + [
            (reason, reason.replace("_", " "), colour)
            for reason, colour in zip(coverage["reasons"], REASON_COLOURS, strict=True)
        ]
        for key, label, colour in parts:
            shares = np.array([p[key] for p in partners], dtype=float) / totals
            if shares.any():
                axes.barh(y, shares, left=left, color=colour, label=label, height=0.65)
                left += shares
        for row, p in enumerate(partners):
            text = f" {p['judged']:,} of {p['accesses']:,} judged"
            axes.text(1.0, row, text, va="center", fontsize=9)
        names = [
            _label(f"{p['partner_name']} ({p['partner_id']})")
            if p["partner_name"]
            else _label(p["partner_id"])
            for p in partners
        ]
        axes.set_yticks(y, names, fontsize=10)
        axes.set_xlim(0, 1)
        axes.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
        axes.set_xlabel("share of the partner's message accesses")
        axes.set_title("Coverage by partner: accesses judged and not judged, by reason", loc="left")
        if partners:
            axes.legend(loc="upper left", bbox_to_anchor=(1.22, 1), frameon=False, fontsize=10)
        return _svg(figure, "coverage-by-partner")


def report_charts(summary: dict[str, Any], trend: dict[str, Any]) -> dict[str, str]:
    """Every chart of the report, by name, as inline SVG."""
    return {
        "by_partner_and_severity": flags_by_partner_and_severity(summary),
        "per_day_by_rule": flags_per_day_by_rule(trend),
        "per_day_by_partner": flags_per_day_by_partner(trend, summary["partner_names"]),
        "coverage_by_partner": coverage_by_partner(summary),
    }
