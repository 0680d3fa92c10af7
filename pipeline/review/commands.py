"""`access-audit review …`: the review queue from the command line (parse, call, print)."""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
import os
import sys
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Any

from pipeline.config import SEVERITIES, load_settings, redact_url_password
from pipeline.errors import ConfigError
from pipeline.review.lifecycle import KINDS, SORTS, STATUSES

if TYPE_CHECKING:
    from pipeline.review.store import ReviewStore

PROG = "access-audit"


def add_review_parser(commands: Any, day: Callable[[str], date]) -> None:
    """Register `review` and its subcommands on the main parser's subcommands."""
    review = commands.add_parser(
        "review",
        help="list and decide alerts (rule and behaviour alerts, and series of them)",
        description="Work the review queue in the review store (setting review_db). Where an "
        "action takes ids, each is an alert id or a series id (a series: every day of it).",
    )
    actions = review.add_subparsers(
        dest="review_command", required=True, metavar="ACTION", parser_class=type(review)
    )

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        parser = actions.add_parser(
            name, help=help_text, description=help_text[0].upper() + help_text[1:] + "."
        )
        parser.add_argument("--db", help="review store URL (default: the review_db setting)")
        parser.add_argument("--config", help="TOML settings file")
        parser.add_argument("-v", "--verbose", action="store_true", help="log what the store does")
        return parser

    listing = action("list", "list alerts, newest day first")
    listing.add_argument("--start", type=day, help="first day, YYYY-MM-DD")
    listing.add_argument("--end", type=day, help="last day (included)")
    listing.add_argument("--partner", help="only this partner_id")
    listing.add_argument("--app", help="only this app_id")
    listing.add_argument("--rule", help="only this rule (partner_day, app_user_day: behaviour)")
    listing.add_argument("--severity", choices=SEVERITIES)
    listing.add_argument("--status", choices=STATUSES)
    listing.add_argument("--assignee", help="only alerts assigned to this user")
    listing.add_argument("--kind", choices=KINDS)
    listing.add_argument("--series", metavar="SERIES", help="only the alerts of this series")
    listing.add_argument(
        "--by-series", action="store_true", help="one line per series (as the web queue shows)"
    )
    listing.add_argument("--include-suppressed", action="store_true", help="show suppressed too")
    listing.add_argument("--sort", choices=SORTS, default="-day", help="(default: -day)")
    listing.add_argument("--page", type=int, default=1, help="page number, from 1")
    listing.add_argument("--per-page", type=int, default=50, help="lines a page, 1-500")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")

    show = action("show", "show one alert (with a page of its flags) or series, and its trail")
    show.add_argument("item", metavar="ID", help="alert id or series id")
    show.add_argument("--user", help="flags of this user only")
    show.add_argument("--request-id", help="the flag of this request only")
    show.add_argument("--action", choices=("read", "write", "delete"), help="flags of one action")
    show.add_argument("--offset", type=int, default=0, help="flags to skip (paging)")
    show.add_argument("--limit", type=int, default=20, help="flags to show, 1-10000")
    show.add_argument("--json", action="store_true", help="print JSON")

    status = action("set-status", "move alerts (or every day of a series) to a status")
    status.add_argument("items", nargs="+", metavar="ID", help="alert or series ids")
    status.add_argument("--to", required=True, choices=STATUSES, dest="status")
    status.add_argument("--note", help="why (kept in the audit trail)")
    _actor_option(status)

    assign = action("assign", "give alerts (or every day of a series) to a user, or to nobody")
    assign.add_argument("items", nargs="+", metavar="ID", help="alert or series ids")
    who = assign.add_mutually_exclusive_group(required=True)
    who.add_argument("--to", dest="assignee", metavar="USER")
    who.add_argument("--none", action="store_true", help="unassign")
    _actor_option(assign)

    note = action("note", "add a note to the trail of alerts (or of every day of a series)")
    note.add_argument("items", nargs="+", metavar="ID", help="alert or series ids")
    note.add_argument("--text", required=True)
    _actor_option(note)

    suppress = action("suppress", "keep an app's alerts of one rule out of the queue up to a day")
    suppress.add_argument("--app", required=True, type=_identifier, help="app_id")
    suppress.add_argument("--rule", required=True, help="rule, e.g. SIGNIN_EXPIRED")
    suppress.add_argument("--until", required=True, type=day, help="last day (included)")
    suppress.add_argument("--reason", required=True)
    _actor_option(suppress)

    logout_all = action("logout-all", "end every session of the review UI (or one user's)")
    logout_all.add_argument("--user", help="only this user's sessions")
    _actor_option(logout_all)

    action("verify-audit", "check the audit trail's hash chain; exit 1 at the first broken row")


def _identifier(value: str) -> str:
    """An app id to suppress, as given (any length); one holding a control character, which no
    stored id holds (ingest and the registry refuse them), is a usage error saying so."""
    control = next((c for c in value if ord(c) < 0x20 or ord(c) == 0x7F), None)
    if control is not None:
        raise argparse.ArgumentTypeError(
            f"holds a control character (U+{ord(control):04X}), which no id may hold"
        )
    return value


def _actor_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--as", dest="actor", help="who is acting (default: $USER)")


def _actor(args: argparse.Namespace) -> str:
    if args.actor:
        return str(args.actor)
    try:
        return os.environ.get("USER") or getpass.getuser()
    except (KeyError, OSError):
        raise ConfigError("cannot tell who you are: pass --as NAME") from None


def os_user() -> str:
    """The account running the command, from the process's real uid ($USER can be set to
    anything); recorded beside `--as` in every audit row the command writes."""
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return getpass.getuser()


def run_review(args: argparse.Namespace) -> int:
    """Run one `review` action; user errors print one line and exit 1."""
    import sqlalchemy.exc

    from pipeline.errors import InvalidTransition, StaleItem, UnknownItem
    from pipeline.review.store import ReviewStore

    settings = load_settings(args.config, review_db=args.db)
    try:
        store = ReviewStore.open(settings.review_db)
    except (sqlalchemy.exc.SQLAlchemyError, OSError) as exc:
        where = redact_url_password(settings.review_db)
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        print(f"{PROG}: error: cannot open review store {where}: {reason}", file=sys.stderr)
        return 1
    from pipeline.review.audit_chain import acting_from

    args.settings = settings
    try:
        with acting_from(f"cli os_user={os_user()}"):
            ACTIONS[args.review_command](store, args)
    except (UnknownItem, InvalidTransition, StaleItem, ValueError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except AuditBroken:
        return 1
    finally:
        store.dispose()
    return 0


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, default=str)


def _plain(*values: Any) -> list[Any]:
    """Cells shown as they are: partners' data is never read as rich markup."""
    from rich.text import Text

    return [Text("" if value is None else str(value)) for value in values]


def _console() -> Any:
    from rich.console import Console

    console = Console()
    if not console.is_terminal:  # piped: wide enough for whole ids (or use --json)
        console = Console(width=220)
    return console


def _list(store: ReviewStore, args: argparse.Namespace) -> None:
    from rich.table import Table

    from pipeline.review.store import AlertFilter

    filt = AlertFilter(
        start=args.start,
        end=args.end,
        partner_id=args.partner,
        app_id=args.app,
        rule=args.rule,
        severity=args.severity,
        status=args.status,
        assignee=args.assignee,
        kind=args.kind,
        series_id=args.series,
        include_suppressed=args.include_suppressed,
    )
    if args.by_series:
        _list_series(store, filt, args)
        return
    page = store.alerts(filt, args.sort, args.page, args.per_page)
    if args.json:
        print(_json(dataclasses.asdict(page)))
        return
    pages = max(1, -(-page.total // page.per_page))
    table = Table(title=f"{page.total:,} alerts (page {page.page} of {pages:,})")
    # one line an alert: ids and facts whole, the explanation cut (`review show` has it whole)
    for column in ("alert", "day", "severity", "rule", "partner", "app", "flags", "status",
                   "assignee", "series"):  # fmt: skip
        table.add_column(column, no_wrap=True, min_width=len(column))
    table.add_column("explanation", no_wrap=True, overflow="ellipsis", max_width=60)
    for alert in page.alerts:
        table.add_row(
            *_plain(
                alert.alert_id,
                alert.day.isoformat(),
                alert.severity,
                alert.rule,
                alert.partner_id,
                alert.app_id,
                f"{alert.flags:,}",
                alert.status + (" (suppressed)" if alert.suppressed_by else ""),
                alert.assignee,
                alert.series_id,
                alert.explanation,
            )
        )
    _console().print(table)


def _list_series(store: ReviewStore, filt: Any, args: argparse.Namespace) -> None:
    from rich.table import Table

    page = store.queue(filt, args.sort, args.page, args.per_page)
    if args.json:
        print(_json(dataclasses.asdict(page)))
        return
    pages = max(1, -(-page.total // page.per_page))
    table = Table(title=f"{page.total:,} series and lone alerts (page {page.page} of {pages:,})")
    for column in ("id", "days", "severity", "rule", "partner", "app", "flags", "status",
                   "assignee"):  # fmt: skip
        table.add_column(column, no_wrap=True, min_width=len(column))
    table.add_column("explanation", no_wrap=True, overflow="ellipsis", max_width=60)
    for row in page.rows:
        days = (
            f"{row.first.day} .. {row.last.day} ({row.series_days})"
            if row.series_days > 1
            else row.first.day.isoformat()
        )
        table.add_row(
            *_plain(
                row.key,
                days,
                row.severity,
                row.first.rule,
                row.first.partner_id,
                row.first.app_id,
                f"{row.flags:,}",
                "/".join(row.statuses),
                ", ".join(row.assignees),
                row.last.explanation,
            )
        )
    _console().print(table)


def _trail_table(trail: list[Any], title: str) -> Any:
    from rich.table import Table

    audit = Table(title=title)
    for column in ("at", "actor", "alert", "action", "from", "to", "note", "how"):
        audit.add_column(column, overflow="fold")
    for entry in trail:
        audit.add_row(
            *_plain(
                entry.at.isoformat(timespec="seconds"),
                entry.actor,
                (entry.alert_id or "")[:10],
                entry.action,
                entry.from_value,
                entry.to_value,
                entry.note,
                entry.via,
            )
        )
    return audit


def _show(store: ReviewStore, args: argparse.Namespace) -> None:
    from pipeline.errors import UnknownItem

    try:
        alert = store.alert(args.item)
    except UnknownItem:
        _show_series(store, args)
        return
    _show_alert(store, alert, args)


def _show_alert(store: ReviewStore, alert: Any, args: argparse.Namespace) -> None:
    from rich.table import Table

    from pipeline.detect.alert_flags import alert_flag_count, alert_flags
    from pipeline.warehouse import Warehouse

    settings = args.settings
    warehouse = Warehouse(settings.warehouse, settings)
    filters = {"user": args.user, "request_id": args.request_id, "action": args.action}
    flags = None
    total = 0
    if alert.kind == "rule":
        flags = alert_flags(
            warehouse,
            alert.day,
            alert.alert_id,
            **filters,
            offset=args.offset,
            limit=args.limit,
        )
        total = alert_flag_count(warehouse, alert.day, alert.alert_id, **filters)
    trail = store.audit_trail(alert.alert_id)
    if args.json:
        document = {
            "alert": dataclasses.asdict(alert),
            "flags": {
                "total": total,
                "offset": args.offset,
                "rows": flags.to_pylist() if flags is not None else [],
            },
            "audit": [dataclasses.asdict(e) for e in trail],
        }
        print(_json(document))
        return
    console = _console()
    facts = Table(title=f"{alert.kind} alert {alert.alert_id}", show_header=False)
    facts.add_column("field", style="bold")
    facts.add_column("value", overflow="fold")
    for name, value in dataclasses.asdict(alert).items():
        if name != "evidence":
            facts.add_row(*_plain(name, value))
    for name, value in alert.evidence.items():
        if value is not None:
            facts.add_row(*_plain(f"evidence.{name}", value))
    console.print(facts)
    if flags is not None:
        shown = Table(
            title=f"flags {args.offset + 1 if total else 0}-{args.offset + flags.num_rows} "
            f"of {total:,} (--offset/--limit for more)"
        )
        columns = ("event_time", "user_id", "request_id", "action", "scope", "explanation")
        for column in columns:
            shown.add_column(column, overflow="fold")
        for row in flags.select(list(columns)).to_pylist():
            shown.add_row(*_plain(*row.values()))
        console.print(shown)
    console.print(_trail_table(trail, "audit trail (newest first)"))


def _show_series(store: ReviewStore, args: argparse.Namespace) -> None:
    from rich.table import Table

    series = store.series(args.item)
    trail = store.audit_trail(series_id=series.series_id, limit=1000)
    if args.json:
        document = {
            "series_id": series.series_id,
            "start": series.start,
            "end": series.end,
            "version": series.version,
            "alerts": [dataclasses.asdict(a) for a in series.alerts],
            "audit": [dataclasses.asdict(e) for e in trail],
        }
        print(_json(document))
        return
    console = _console()
    days = Table(
        title=f"series {series.series_id}: {series.rule} of {series.app_id}, "
        f"{series.start} .. {series.end} ({len(series.alerts)} days, {series.flags:,} flags)"
    )
    for column in ("day", "alert", "severity", "flags", "users", "status", "assignee"):
        days.add_column(column, no_wrap=True)
    for a in series.alerts:
        days.add_row(
            *_plain(a.day, a.alert_id, a.severity, f"{a.flags:,}", a.users, a.status, a.assignee)
        )
    console.print(days)
    console.print(_trail_table(trail, "audit trail of its days (newest first)"))


def _targets(store: ReviewStore, ids: list[str]) -> tuple[list[str], list[str]]:
    """Alert ids and series ids among `ids` (UnknownItem for one that is neither)."""
    from pipeline.errors import UnknownItem

    alerts, series = [], []
    for value in ids:
        try:
            alerts.append(store.alert(value).alert_id)
        except UnknownItem:
            series.append(store.series(value).series_id)
    return alerts, series


def _set_status(store: ReviewStore, args: argparse.Namespace) -> None:
    alerts, series = _targets(store, args.items)
    changed = store.set_status(alerts, args.status, _actor(args), note=args.note, series_ids=series)
    print(f"{changed} alert(s) set to {args.status}")


def _assign(store: ReviewStore, args: argparse.Namespace) -> None:
    assignee = None if args.none else args.assignee
    alerts, series = _targets(store, args.items)
    changed = store.assign(alerts, assignee, _actor(args), series_ids=series)
    print(f"{changed} alert(s) assigned to {assignee or 'nobody'}")


def _note(store: ReviewStore, args: argparse.Namespace) -> None:
    alerts, series = _targets(store, args.items)
    noted = store.add_note(alerts, args.text, _actor(args), series_ids=series)
    print(f"note added to {noted} alert(s)")


def _suppress(store: ReviewStore, args: argparse.Namespace) -> None:
    suppression = store.suppress(args.app, args.rule, args.until, args.reason, _actor(args))
    print(
        f"suppression #{suppression.id}: {args.app} {args.rule} until {args.until} "
        "(matching new alerts hidden from the queue; the warehouse keeps their flags)"
    )


def _logout_all(store: ReviewStore, args: argparse.Namespace) -> None:
    from pipeline.review.sessions import logout_all

    ended = logout_all(store, _actor(args), args.user)
    print(f"{ended} session(s) ended" + (f" of {args.user}" if args.user else ""))


def _verify_audit(store: ReviewStore, args: argparse.Namespace) -> None:
    from pipeline.review.audit_chain import verify_audit

    ok, message = verify_audit(store)
    print(message)
    if not ok:
        raise AuditBroken


class AuditBroken(Exception):
    """verify-audit found a broken row (already printed): exit 1."""


ACTIONS: dict[str, Callable[[ReviewStore, argparse.Namespace], None]] = {
    "list": _list,
    "show": _show,
    "set-status": _set_status,
    "assign": _assign,
    "note": _note,
    "suppress": _suppress,
    "logout-all": _logout_all,
    "verify-audit": _verify_audit,
}
