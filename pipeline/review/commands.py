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
        help="list and decide review items (flags and anomaly alerts)",
        description="Work the review queue in the review store (setting review_db).",
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

    listing = action("list", "list the queue, newest day first")
    listing.add_argument("--start", type=day, help="first day, YYYY-MM-DD")
    listing.add_argument("--end", type=day, help="last day (included)")
    listing.add_argument("--partner", help="only this partner_id")
    listing.add_argument("--app", help="only this app_id")
    listing.add_argument("--rule", help="only this rule (ANOMALY for anomaly alerts)")
    listing.add_argument("--severity", choices=SEVERITIES)
    listing.add_argument("--status", choices=STATUSES)
    listing.add_argument("--assignee", help="only items assigned to this user")
    listing.add_argument("--kind", choices=KINDS)
    listing.add_argument("--include-suppressed", action="store_true", help="show suppressed too")
    listing.add_argument("--sort", choices=SORTS, default="-day", help="(default: -day)")
    listing.add_argument("--page", type=int, default=1, help="page number, from 1")
    listing.add_argument("--per-page", type=int, default=50, help="items a page, 1-500")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")

    show = action("show", "show one item with its audit trail")
    show.add_argument("item", metavar="ITEM", help="item id")
    show.add_argument("--json", action="store_true", help="print JSON")

    status = action("set-status", "move items to a status")
    status.add_argument("items", nargs="+", metavar="ITEM", help="item ids")
    status.add_argument("--to", required=True, choices=STATUSES, dest="status")
    status.add_argument("--note", help="why (kept in the audit trail)")
    _actor_option(status)

    assign = action("assign", "give items to a user, or to nobody")
    assign.add_argument("items", nargs="+", metavar="ITEM", help="item ids")
    who = assign.add_mutually_exclusive_group(required=True)
    who.add_argument("--to", dest="assignee", metavar="USER")
    who.add_argument("--none", action="store_true", help="unassign")
    _actor_option(assign)

    note = action("note", "add a note to an item's audit trail")
    note.add_argument("item", metavar="ITEM", help="item id")
    note.add_argument("--text", required=True)
    _actor_option(note)

    suppress = action("suppress", "keep an app's items of one rule out of the queue up to a day")
    suppress.add_argument("--app", required=True, help="app_id")
    suppress.add_argument("--rule", required=True, help="rule, e.g. SIGNIN_EXPIRED")
    suppress.add_argument("--until", required=True, type=day, help="last day (included)")
    suppress.add_argument("--reason", required=True)
    _actor_option(suppress)

    logout_all = action("logout-all", "end every session of the review UI (or one user's)")
    logout_all.add_argument("--user", help="only this user's sessions")
    _actor_option(logout_all)

    action("verify-audit", "check the audit trail's hash chain; exit 1 at the first broken row")


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


def _list(store: ReviewStore, args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    from pipeline.review.store import ItemFilter

    filt = ItemFilter(
        start=args.start,
        end=args.end,
        partner_id=args.partner,
        app_id=args.app,
        rule=args.rule,
        severity=args.severity,
        status=args.status,
        assignee=args.assignee,
        kind=args.kind,
        include_suppressed=args.include_suppressed,
    )
    page = store.items(filt, args.sort, args.page, args.per_page)
    if args.json:
        print(_json(dataclasses.asdict(page)))
        return
    pages = max(1, -(-page.total // page.per_page))
    table = Table(title=f"{page.total:,} items (page {page.page} of {pages:,})")
    # one line an item: ids and facts whole, the explanation cut (`review show` has it whole)
    for column in ("item", "day", "severity", "rule", "partner", "app", "status", "assignee"):
        table.add_column(column, no_wrap=True, min_width=len(column))
    table.add_column("explanation", no_wrap=True, overflow="ellipsis", max_width=60)
    for item in page.items:
        table.add_row(
            *_plain(
                item.item_id,
                item.day.isoformat(),
                item.severity,
                item.rule,
                item.partner_id,
                item.app_id,
                item.status + (" (suppressed)" if item.suppressed_by else ""),
                item.assignee,
                item.explanation,
            )
        )
    console = Console()
    if not console.is_terminal:  # piped: wide enough for whole ids (or use --json)
        console = Console(width=200)
    console.print(table)


def _show(store: ReviewStore, args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    item = store.item(args.item)
    trail = store.audit_trail(args.item)
    if args.json:
        print(
            _json(
                {"item": dataclasses.asdict(item), "audit": [dataclasses.asdict(e) for e in trail]}
            )
        )
        return
    console = Console()
    facts = Table(title=f"{item.kind} {item.item_id}", show_header=False)
    facts.add_column("field", style="bold")
    facts.add_column("value", overflow="fold")
    for name, value in dataclasses.asdict(item).items():
        if name != "evidence":
            facts.add_row(*_plain(name, value))
    for name, value in item.evidence.items():
        if value is not None:
            facts.add_row(*_plain(f"evidence.{name}", value))
    console.print(facts)
    audit = Table(title="audit trail (newest first)")
    for column in ("at", "actor", "action", "from", "to", "note"):
        audit.add_column(column, overflow="fold")
    for entry in trail:
        audit.add_row(
            *_plain(
                entry.at.isoformat(timespec="seconds"),
                entry.actor,
                entry.action,
                entry.from_value,
                entry.to_value,
                entry.note,
            )
        )
    console.print(audit)


def _set_status(store: ReviewStore, args: argparse.Namespace) -> None:
    changed = store.set_status(args.items, args.status, _actor(args), note=args.note)
    print(f"{changed} item(s) set to {args.status}")


def _assign(store: ReviewStore, args: argparse.Namespace) -> None:
    assignee = None if args.none else args.assignee
    changed = store.assign(args.items, assignee, _actor(args))
    print(f"{changed} item(s) assigned to {assignee or 'nobody'}")


def _note(store: ReviewStore, args: argparse.Namespace) -> None:
    store.add_note(args.item, args.text, _actor(args))
    print(f"note added to {args.item}")


def _suppress(store: ReviewStore, args: argparse.Namespace) -> None:
    suppression = store.suppress(args.app, args.rule, args.until, args.reason, _actor(args))
    print(
        f"suppression #{suppression.id}: {args.app} {args.rule} until {args.until} "
        "(matching new items hidden from the queue; the warehouse keeps them)"
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
