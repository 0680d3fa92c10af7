"""The command line: parses arguments, calls the steps, prints. No business logic here."""

from __future__ import annotations

import argparse
import logging
import sys
from collections import Counter
from datetime import date, timedelta
from typing import Any, NoReturn

from pipeline.config import Settings, load_settings
from pipeline.errors import ConfigError
from pipeline.review.commands import add_review_parser, run_review

PROG = "access-audit"
log = logging.getLogger(PROG)


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line (exit 2), not a usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{PROG}: error: {message} (see '{self.prog} --help')\n")


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _add_location_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--landing",
        help="landing zone: a folder or fsspec URL "
        "(default: config, $ACCESS_AUDIT_LANDING, else sample_logs/)",
    )
    parser.add_argument(
        "--warehouse",
        help="warehouse folder or URL (default: config, $ACCESS_AUDIT_WAREHOUSE, else ./warehouse)",
    )
    parser.add_argument(
        "--config",
        help="TOML settings file (default: $ACCESS_AUDIT_CONFIG, "
        "else ./access-audit.toml if present)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log each step's counts")


def _add_range_options(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("--start", type=_day, required=required, help="first day, YYYY-MM-DD")
    parser.add_argument("--end", type=_day, required=required, help="last day (included)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Flag partner-API accesses to users' messages that no consent or "
        "partnership covered (see SPEC.md).",
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )
    run = commands.add_parser(
        "run",
        help="audit one delivery day",
        description="Audit one delivery day: ingest, detect, score, alerts, publish, report.",
    )
    run.add_argument("--date", type=_day, required=True, help="the delivery day, YYYY-MM-DD")
    _add_location_options(run)

    backfill = commands.add_parser(
        "backfill",
        help="audit a range of delivery days, oldest first",
        description="Run every day from --start to --end (both included), oldest first. "
        "Days that fail are reported at the end; the others still run.",
    )
    _add_range_options(backfill, required=False)
    backfill.add_argument(
        "--all",
        action="store_true",
        help="every day delivered in the landing zone instead of --start/--end",
    )
    _add_location_options(backfill)

    train = commands.add_parser(
        "train",
        help="train the behaviour model on a trailing window",
        description="Train the anomaly model on the days up to --end (computing their behaviour "
        "features from the warehouse) and store it under models/<name>/<version>/.",
    )
    train.add_argument("--end", type=_day, required=True, help="last day of the window")
    train.add_argument(
        "--window-days",
        type=int,
        default=None,
        help="days in the window (default: the anomaly_window_days setting, 28)",
    )
    _add_location_options(train)

    score = commands.add_parser(
        "score",
        help="score days' behaviour with the newest model",
        description="Compute the behaviour features of --start .. --end (already run days) and "
        "write their anomaly scores (warehouse anomalies/). `run` and `backfill` do this too.",
    )
    _add_range_options(score)
    _add_location_options(score)

    evaluate = commands.add_parser(
        "evaluate",
        help="score the anomaly ranking against a ground truth",
        description="Precision@k and recall of the partner-day anomaly ranking of --start .. "
        "--end against a ground-truth CSV (day, partner_id, ...), e.g. the demo's injected "
        "anomalies.",
    )
    _add_range_options(evaluate)
    evaluate.add_argument("--truth", help="ground-truth CSV (default: <landing>/anomalies.csv)")
    evaluate.add_argument("--k", type=int, default=10, help="the top k of each day (default 10)")
    _add_location_options(evaluate)

    report = commands.add_parser(
        "report",
        help="write the report of a day or a range",
        description="Write report.html, summary.json and digest.md of --date D (to "
        "<warehouse>/reports/date=D/) or of --start .. --end (to reports/range=D1_D2/) from the "
        "warehouse; `run` and `backfill` write each day's report themselves.",
    )
    report.add_argument("--date", type=_day, help="the delivery day, YYYY-MM-DD")
    _add_range_options(report, required=False)
    _add_location_options(report)

    flags = commands.add_parser(
        "flags", help="list a day's flags", description="Read flags from the warehouse."
    )
    flags.add_argument("--date", type=_day, required=True, help="the delivery day, YYYY-MM-DD")
    flags.add_argument("--rule", help="only this rule, e.g. SIGNIN_REVOKED")
    flags.add_argument("--partner", help="only this partner_id")
    flags.add_argument(
        "--format",
        choices=("table", "csv", "json"),
        default="table",
        help="output format (default: table)",
    )
    flags.add_argument(
        "--limit", type=int, default=50, help="rows shown in table format (default: 50; 0 for all)"
    )
    _add_location_options(flags)

    alerts = commands.add_parser(
        "alerts",
        help="list a day's alerts",
        description="Read a day's alerts (one per app and rule, and the behaviour model's) from "
        "the warehouse's alerts/date=D/, most severe first.",
    )
    alerts.add_argument("--date", type=_day, required=True, help="the delivery day, YYYY-MM-DD")
    alerts.add_argument(
        "--rule", help="only this rule (e.g. AFTER_PARTNERSHIP_END) or behaviour kind"
    )
    alerts.add_argument("--partner", help="only this partner_id")
    alerts.add_argument(
        "--format",
        choices=("table", "csv", "json"),
        default="table",
        help="output format (default: table)",
    )
    _add_location_options(alerts)
    add_review_parser(commands, day=_day)
    _add_review_ui_commands(commands)
    return parser


def _add_review_ui_commands(commands: Any) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the review web UI",
        description="Serve the review UI (queue, items, partners) on the review store "
        "(review_db); logins come from the review_users setting.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    serve.add_argument("--config", help="TOML settings file (as for run)")
    serve.add_argument("-v", "--verbose", action="store_true", help="log each request")
    commands.add_parser(
        "hash-password",
        help="print an argon2 hash for a review_users entry",
        description="Read a password (prompted, or one line on stdin) and print its argon2 hash "
        "for the password_hash of a [[review_users]] entry. Never pass it as an argument.",
    )


def _hash_password() -> int:
    import getpass

    from pipeline.review.web.auth import hash_password

    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise ConfigError("the two passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise ConfigError("empty password")
    print(hash_password(password))
    return 0


def _serve(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    if not settings.review_users:
        raise ConfigError(
            "no review_users in the settings: nobody could log in "
            "(add [[review_users]] entries; `access-audit hash-password` makes the hashes)"
        )
    if not 0 < args.port < 65536:
        raise ConfigError(f"--port {args.port} is not a port number (1-65535)")
    from pipeline.review.web.app import serve

    serve(settings, args.host, args.port, log_level="info" if args.verbose else "warning")
    return 0


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.config, landing=args.landing, warehouse=args.warehouse)


def _days(args: argparse.Namespace, settings: Settings) -> list[date]:
    if getattr(args, "all", False):
        from pipeline.readers.landing import Landing
        from pipeline.sources import delivery_days

        landing = Landing(settings.landing, settings)
        days = sorted(
            {d for kind in ("access", "consent") for d in delivery_days(landing, settings, kind)}
        )
        if not days:
            raise ConfigError(f"no delivery days found in {settings.landing}")
        return days
    if args.start is None or args.end is None:
        raise ConfigError("backfill needs --start and --end (or --all)")
    if args.end < args.start:
        raise ConfigError(f"--end {args.end} is before --start {args.start}")
    return [args.start + timedelta(days=i) for i in range((args.end - args.start).days + 1)]


def _audit(days: list[date], settings: Settings) -> int:
    """Run each day with a progress bar over days and records; returns the exit code."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

    from pipeline.steps import run_day

    console = Console(stderr=True)
    results: dict[date, dict[str, Any]] = {}
    failures: dict[date, str] = {}
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(
        *columns, console=console, transient=True, disable=not console.is_terminal
    ) as progress:
        overall = progress.add_task("days", total=len(days))
        for day in days:
            records = progress.add_task(f"  {day} records", total=None)

            def advance(lines: int, task: TaskID = records) -> None:
                progress.advance(task, lines)

            try:
                results[day] = run_day(day, settings, on_lines=advance)
            except Exception as exc:  # one day's failure must not hide the others
                failures[day] = _reason(exc)
                log.debug("day %s failed", day, exc_info=True)
            progress.remove_task(records)
            progress.advance(overall)
    _print_summary(results, settings)
    for day, reason in failures.items():
        print(f"{PROG}: {day} failed: {reason}", file=sys.stderr)
    return 1 if failures else 0


def _reason(exc: Exception) -> str:
    from pipeline.errors import USER_FACING

    if isinstance(exc, USER_FACING):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _print_summary(results: dict[date, dict[str, Any]], settings: Settings) -> None:
    if not results:
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    totals: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    by_rule: Counter[str] = Counter()
    by_partner: Counter[str] = Counter()
    for summary in results.values():
        for kind in ("access", "consent"):
            for key, n in summary["counts"][kind].items():
                totals[f"{kind} {key}"] += n
            reasons.update(summary["quarantine_reasons"][kind])
        by_rule.update(summary["flags"]["by_rule"])
        by_partner.update(summary["flags"]["by_partner"])
    first, last = min(results), max(results)
    days = f"{len(results)} day" + ("s" if len(results) > 1 else "")
    inputs = Table(title=f"Input, {first} to {last} ({days})")
    for column in ("records", "read", "valid", "quarantined", "duplicates dropped"):
        inputs.add_column(column, justify="right" if column != "records" else "left")
    for kind in ("access", "consent"):
        inputs.add_row(
            kind,
            *(
                f"{totals[f'{kind} {k}']:,}"
                for k in ("read", "valid", "quarantined", "duplicates_dropped")
            ),
        )
    console.print(inputs)
    if reasons:
        console.print(
            "Quarantined by reason: "
            + ", ".join(f"{reason} {n:,}" for reason, n in reasons.most_common())
        )
    for title, counts in (("Flags by rule", by_rule), ("Flags by partner", by_partner)):
        table = Table(title=title)
        table.add_column(title.split()[-1])
        table.add_column("flags", justify="right")
        for key, n in counts.most_common():
            table.add_row(key, f"{n:,}")
        table.add_row("total", f"{sum(counts.values()):,}", style="bold")
        console.print(table)
    alerted = sum(summary["alerts"]["alerts"] for summary in results.values())
    console.print(f"Alerts to review: {alerted:,}   e.g. {PROG} alerts --date {last}")
    from pipeline.warehouse import Warehouse

    tables = "{access,consent,quarantine,flags,alerts,runs}"
    folders = Warehouse(settings.warehouse, settings).partition_dir(tables, last)
    console.print(f"Outputs: {folders}/   e.g. {PROG} flags --date {last}")


def _day_table(table: str, args: argparse.Namespace, settings: Settings) -> Any:
    """The day's partition of `table` (flags or alerts), only --rule's and --partner's rows."""
    import pyarrow.compute as pc

    from pipeline.warehouse import Warehouse

    warehouse = Warehouse(settings.warehouse, settings)
    if not warehouse.has_partition(table, args.date):
        raise ConfigError(
            f"no {table} for {args.date} in {settings.warehouse} "
            f"(run '{PROG} run --date {args.date}' first)"
        )
    rows = warehouse.read_partition(table, args.date)
    if args.rule:
        rows = rows.filter(pc.equal(rows["rule"], args.rule))
    if args.partner:
        rows = rows.filter(pc.equal(rows["partner_id"], args.partner))
    return rows


def _show_flags(args: argparse.Namespace, settings: Settings) -> int:
    flags = _day_table("flags", args, settings)
    if args.format == "json":
        import json

        for row in flags.to_pylist():
            print(json.dumps(row, default=str))
    elif args.format == "csv":
        import pyarrow.csv as pacsv

        printable = flags.drop_columns([c for c in flags.column_names if c.endswith("scopes")])
        pacsv.write_csv(printable, sys.stdout.buffer)
    else:
        from rich.console import Console
        from rich.table import Table

        shown = flags if args.limit == 0 else flags.slice(0, args.limit)
        table = Table(
            title=f"{flags.num_rows:,} flags on {args.date}"
            + (f" (first {shown.num_rows})" if shown.num_rows < flags.num_rows else "")
        )
        for column in ("severity", "rule", "partner_id", "explanation"):
            table.add_column(column, overflow="fold")
        for row in shown.select(["severity", "rule", "partner_id", "explanation"]).to_pylist():
            table.add_row(*(str(v) if v is not None else "" for v in row.values()))
        Console().print(table)
    return 0


def _show_alerts(args: argparse.Namespace, settings: Settings) -> int:
    import pyarrow as pa
    import pyarrow.compute as pc

    from pipeline.detect.alerts import BEHAVIOUR_SEVERITY
    from pipeline.schema import RULES, UNKNOWN_PARTNER

    known = (*RULES, *BEHAVIOUR_SEVERITY)  # a behaviour alert's rule is its entity kind
    if args.rule is not None and args.rule not in known:
        raise ConfigError(f"--rule {args.rule!r} is not one of {', '.join(known)}")
    alerts = _day_table("alerts", args, settings)
    if args.format == "json":
        import json

        for row in alerts.to_pylist():
            row["evidence"] = json.loads(row["evidence"])
            print(json.dumps(row, default=str, ensure_ascii=False))
    elif args.format == "csv":
        import pyarrow.csv as pacsv

        columns = {}
        for name in alerts.column_names:  # lists as space-separated cells
            column = alerts[name]
            if pa.types.is_list(column.type):
                column = pc.binary_join(pc.cast(column, pa.list_(pa.string())), " ")
            columns[name] = column
        pacsv.write_csv(pa.table(columns), sys.stdout.buffer)
    else:  # a block per alert: its keys on one line, its sentence wrapped below
        from rich.console import Console
        from rich.markup import escape

        console = Console(highlight=False)
        console.print(f"[bold]{alerts.num_rows:,} alerts on {args.date}[/bold]")
        for a in alerts.to_pylist():
            partner = a["partner_id"] or UNKNOWN_PARTNER
            where = " ".join(
                escape(v) for v in (partner, a["app_id"] or "", a["user_id"] or "") if v
            )
            console.print(
                f"\n[bold]{a['severity']}[/bold] {a['rule']} {where}: {a['flags']:,} flags, "
                f"{a['users']:,} users  [dim]{a['alert_id']}[/dim]"
            )
            console.print(escape(a["explanation"]))
    return 0


def _report(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline import steps

    if args.date is not None and (args.start or args.end):
        raise ConfigError("report takes --date or --start/--end, not both")
    if args.date is not None:
        start = end = args.date
    else:
        if args.start is None or args.end is None:
            raise ConfigError("report needs --date, or --start and --end")
        if args.end < args.start:
            raise ConfigError(f"--end {args.end} is before --start {args.start}")
        start, end = args.start, args.end
    summary = steps.report(start, settings, end)
    for name in ("html", "summary", "digest"):
        print(summary["files"][name])
    return 0


def _model_command(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from pipeline import steps

    try:
        if args.command == "train":
            window = settings.anomaly_window_days if args.window_days is None else args.window_days
            if window < 1:
                raise ConfigError(f"--window-days must be at least 1, not {window}")
            summary = steps.train(args.end, window, settings)
        else:
            days = _days(args, settings)
            if args.command == "score":
                summary = {"days": [steps.score(day, settings) for day in days]}
            else:
                truth = args.truth or f"{settings.landing}/anomalies.csv"
                summary = steps.evaluate(days, truth, settings, args.k)
    except (OSError, ValueError, RuntimeError) as exc:
        if isinstance(exc, ConfigError):
            raise
        print(f"{PROG}: {args.command} failed: {_reason(exc)}", file=sys.stderr)
        return 1
    # evaluate: the model beside the baselines, per injected kind, as behaviour.evaluation prints
    table = summary.get("detector_comparison", {}).pop("table", None)
    print(json.dumps(summary, indent=2, default=str))
    if table:
        print(table)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "review":
            return run_review(args)
        if args.command == "hash-password":
            return _hash_password()
        if args.command == "serve":
            return _serve(args)
        settings = _settings(args)
        if args.command == "flags":
            return _show_flags(args, settings)
        if args.command == "alerts":
            return _show_alerts(args, settings)
        if args.command == "report":
            return _report(args, settings)
        if args.command in ("train", "score", "evaluate"):
            return _model_command(args, settings)
        days = [args.date] if args.command == "run" else _days(args, settings)
        return _audit(days, settings)
    except ConfigError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
