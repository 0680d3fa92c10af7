"""The report page: the summary and its charts through a Jinja2 template into one self-contained
HTML file (CSS and SVG inline; the only URLs are links into the review UI)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from pipeline.report.digest import period
from pipeline.schema import UNKNOWN_PARTNER

TEMPLATES = Path(__file__).resolve().parent / "templates"


def _when(iso: str | None) -> str:
    """An ISO timestamp of the summary as 'YYYY-MM-DD HH:MM:SS' (all times are UTC)."""
    return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M:%S") if iso else ""


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["thousands"] = lambda n: f"{n:,}"
    env.filters["percent"] = lambda share: f"{share:.2%}"
    env.filters["when"] = _when
    env.globals["UNKNOWN_PARTNER"] = UNKNOWN_PARTNER
    return env


def render_html(
    summary: dict[str, Any], trend: dict[str, Any], charts: dict[str, str], version: str
) -> str:
    """The report page of a summary (from pipeline.report.gather) and its charts."""
    template = _environment().get_template("report.html.j2")
    return template.render(
        summary=summary,
        trend=trend,
        period=period(summary),
        charts={name: Markup(svg) for name, svg in charts.items()},  # our own SVG, not input
        notifications=summary.get("notifications", []),
        version=version,
    )
