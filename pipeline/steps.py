"""The pipeline's steps, one function each, shared by the CLI and the Airflow DAGs (one code path).

Each step takes the delivery day and the settings explicitly, records what it did in the day's
run folder, and returns a small JSON-able summary.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from datetime import date, timedelta
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from pipeline.config import Settings
from pipeline.errors import MissingInput, ReconciliationError
from pipeline.warehouse import ALERTS_SENT, MANIFEST

log = logging.getLogger(__name__)


def pipeline_version() -> str:
    try:
        return version("partner-access-audit")
    except PackageNotFoundError:
        return "unknown"


def _landing(settings: Settings) -> Any:
    from pipeline.readers.landing import Landing

    return Landing(settings.landing, settings)


def _warehouse(settings: Settings) -> Any:
    from pipeline.warehouse import Warehouse

    return Warehouse(settings.warehouse, settings)


def missing_markers(day: date, settings: Settings) -> list[str]:
    """The delivery markers of `day` that are not there yet (empty when the day is complete)."""
    from pipeline import sources

    landing = _landing(settings)
    return [
        marker
        for kind in ("access", "consent")
        for marker in sources.missing_markers(landing, settings, kind, day)
    ]


def _require_marker(kind: str, day: date, settings: Settings) -> None:
    from pipeline import sources

    missing = sources.missing_markers(_landing(settings), settings, kind, day)
    if missing:
        raise MissingInput(
            f"missing input: {settings.landing}/{missing[0]} not found "
            "(the delivery is absent or incomplete)"
        )


def _ingest(
    kind: str, day: date, settings: Settings, on_lines: Callable[[int], None] | None
) -> dict[str, Any]:
    from pipeline.ingest.day import ingest_day

    _require_marker(kind, day, settings)
    warehouse = _warehouse(settings)
    result = ingest_day(
        kind, day, _landing(settings), warehouse, settings, on_lines or (lambda n: None)
    )
    summary = result.to_dict()
    warehouse.write_json("runs", day, f"ingest-{kind}.json", summary)
    return summary


def ingest_access(
    day: date, settings: Settings, on_lines: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """Landing access/<day>/ → warehouse access, quarantine; returns counts."""
    return _ingest("access", day, settings, on_lines)


def ingest_consent(
    day: date, settings: Settings, on_lines: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """Landing consent/<day>/ → warehouse consent, quarantine; returns counts."""
    return _ingest("consent", day, settings, on_lines)


def _consent_is_current(day: date, settings: Settings) -> bool:
    """Whether the warehouse holds consent of `day` ingested from today's landing files."""
    warehouse, landing = _warehouse(settings), _landing(settings)
    done = warehouse.read_json("runs", day, "ingest-consent.json")
    if done is None or not warehouse.has_partition("consent", day):
        return False
    from pipeline.sources import day_files

    seen = [(f["file"], f["size"], f.get("version", "")) for f in done["files"]]
    return seen == [
        (f.name, f.size, f.version) for f in day_files(landing, settings, "consent", day)
    ]


def consent_coverage(day: date, settings: Settings) -> dict[str, list[str]]:
    """The consent days detection of `day` reads, from the first delivered up to `day`:
    `ingested` (current in the warehouse), `not_delivered` (no complete delivery in the landing
    zone: their grants are unknown), `not_ingested` (delivered, but the warehouse lacks them or
    holds them from other files: the catch-up has not run)."""
    landing = _landing(settings)
    from pipeline import sources

    delivered = [
        d
        for d in sources.delivery_days(landing, settings, "consent")
        if d <= day and not sources.missing_markers(landing, settings, "consent", d)
    ]
    coverage: dict[str, list[str]] = {"ingested": [], "not_delivered": [], "not_ingested": []}
    if not delivered:
        return coverage
    for n in range((day - delivered[0]).days + 1):
        d = delivered[0] + timedelta(days=n)
        key = (
            "not_delivered"
            if d not in delivered
            else "ingested"
            if _consent_is_current(d, settings)
            else "not_ingested"
        )
        coverage[key].append(d.isoformat())
    return coverage


def catch_up_consent(day: date, settings: Settings) -> dict[str, Any]:
    """Ingest the complete consent deliveries of days before `day` that the warehouse lacks (or
    holds from other files), so that detecting `day` reads its whole consent history; the
    explicit step that makes a nightly run and a backfill of one day give the same flags."""
    caught_up = []
    for earlier in consent_coverage(day - timedelta(days=1), settings)["not_ingested"]:
        ingest_consent(date.fromisoformat(earlier), settings)
        caught_up.append(earlier)
    summary = {"day": day.isoformat(), "ingested": caught_up}
    if caught_up:
        log.info("consent catch-up before %s: ingested %s", day, caught_up)
    _warehouse(settings).write_json("runs", day, "consent-catch-up.json", summary)
    return summary


def detect_plan(day: date, settings: Settings, run: str | None = None) -> dict[str, Any]:
    """Checks detection's inputs and names its work units: `run` (a token shared by the units
    of one detection: from `run`, e.g. an Airflow run id, else new) and `shards`. Fails
    naming a consent day that was delivered but not ingested; days never delivered are
    reported by the detection's coverage."""
    import hashlib
    import uuid

    warehouse = _warehouse(settings)
    _require_marker("access", day, settings)
    _require_marker("consent", day, settings)
    if not warehouse.has_partition("access", day):
        raise MissingInput(f"access of {day} is not ingested yet: run ingest_access first")
    if not _consent_is_current(day, settings):
        raise MissingInput(f"consent of {day} is not ingested yet: run ingest_consent first")
    behind = consent_coverage(day, settings)["not_ingested"]
    if behind:
        raise MissingInput(
            f"detect {day}: consent of {', '.join(behind)} is delivered but not ingested "
            "(run the consent catch-up first: the DAG's ingest_consent task, or "
            "`access-audit run` for the day)"
        )
    token = hashlib.sha256(run.encode()).hexdigest()[:16] if run else uuid.uuid4().hex[:16]
    return {"day": day.isoformat(), "run": token, "shards": settings.detect_shards}


def detect_shard(
    day: date, settings: Settings, shard: int, shards: int, run: str
) -> dict[str, Any]:
    """One detection unit: the flags of user shard `shard` of `shards` → a staged piece of the
    day's flags partition (not visible until `detect_commit`)."""
    from pipeline.detect.registry import load_registry
    from pipeline.detect.shards import write_shard_flags
    from pipeline.warehouse import Shard

    started = time.perf_counter()
    warehouse = _warehouse(settings)
    registry, _ = load_registry(_landing(settings))
    consent_days = [d for d in warehouse.partition_days("consent") if d <= day]
    unit = Shard(shard, shards)
    by_rule = write_shard_flags(day, warehouse, registry, consent_days, unit, run, settings)
    seconds = round(time.perf_counter() - started, 3)
    log.info("detect %s %s: %d flags in %.1fs", day, unit.label, sum(by_rule.values()), seconds)
    return {"shard": unit.label, "flags": sum(by_rule.values()), "seconds": seconds}


def detect_commit(day: date, settings: Settings, run: str, shards: int) -> dict[str, Any]:
    """The units' flags → the day's flags partition (atomic), and the detection's record."""
    from pipeline.detect.coverage import write_day_coverage
    from pipeline.detect.registry import load_registry
    from pipeline.detect.shards import assemble_flags

    started = time.perf_counter()
    warehouse = _warehouse(settings)
    registry, registry_sha256 = load_registry(_landing(settings))
    assembled = assemble_flags(day, warehouse, run, shards, settings)
    by_rule = assembled.by_rule
    coverage = consent_coverage(day, settings)
    write_day_coverage(warehouse, day, assembled.coverage)
    judged = {
        n: sum(assembled.coverage[n].to_pylist()) for n in ("accesses", "judged", "not_judged")
    }
    flags = sum(by_rule.values())
    summary = {
        "day": day.isoformat(),
        "flags": flags,
        "flags_by_rule": dict(sorted(by_rule.items())),
        "shards": shards,
        "consent_days_read": len(coverage["ingested"]),
        "consent_days_not_delivered": coverage["not_delivered"],
        "registry_sha256": registry_sha256,
        "registry_rows": registry.num_rows,
        "coverage": coverage,
        "accesses_judged": judged,
        "seconds": round(time.perf_counter() - started, 3),
    }
    if coverage["not_delivered"]:
        log.warning(
            "detect %s: no consent delivery for %s: flags may miss their grants",
            day,
            ", ".join(coverage["not_delivered"]),
        )
    warehouse.write_json("runs", day, "detect.json", summary)
    log.info("detect %s: %d flags %s, %d shard(s)", day, flags, dict(by_rule), shards)
    return summary


def detect(day: date, settings: Settings) -> dict[str, Any]:
    """Warehouse access of <day> + consent of days <= day + registry → warehouse flags: every
    unit in this process, then the commit (the DAG maps the units over workers instead)."""
    started = time.perf_counter()
    plan = detect_plan(day, settings)
    for shard in range(plan["shards"]):
        detect_shard(day, settings, shard, plan["shards"], plan["run"])
    summary = detect_commit(day, settings, plan["run"], plan["shards"])
    summary["seconds"] = round(time.perf_counter() - started, 3)
    return summary


def score(day: date, settings: Settings) -> dict[str, Any]:
    """The day's behaviour features → warehouse anomalies, with the newest model; skipped (not
    failed) while there is no model yet."""
    from pipeline.behaviour.scoring import score_day

    warehouse = _warehouse(settings)
    summary = score_day(day, warehouse, settings, Path(settings.models_dir))
    warehouse.write_json("runs", day, "score.json", summary)
    return summary


def alerts(day: date, settings: Settings) -> dict[str, Any]:
    """The day's flags + its alerted anomalies + its coverage → warehouse alerts (SPEC §5).
    Without scores of the day (score skipped: no model yet) there are no behaviour alerts; a
    partner whose unjudged share of accesses is above `coverage_alert_share` gets an
    INCOMPLETE_COVERAGE alert (it carries no flags, so the flags still reconcile)."""
    from pipeline import duck
    from pipeline.detect.alerts import build_alerts
    from pipeline.detect.coverage import read_day_coverage
    from pipeline.detect.coverage_alerts import coverage_alerts
    from pipeline.tables import value_counts

    started = time.perf_counter()
    warehouse = _warehouse(settings)
    detected = warehouse.read_json("runs", day, "detect.json")
    if detected is None or not warehouse.has_partition("flags", day):
        raise MissingInput(f"alerts of {day}: the day has no flags yet (run detect first)")
    scored = warehouse.read_json("runs", day, "score.json")
    # a partition left by an earlier run is stale when this run's score was skipped
    anomalies = None
    if scored is not None and "skipped" not in scored:
        anomalies = warehouse.read_partition("anomalies", day)
    covered = coverage_alerts(day, read_day_coverage(warehouse, day), settings)
    with warehouse.scratch_dir() as scratch:
        con = duck.connect(settings, spill_dir=scratch)
        try:  # the flags are aggregated where they lie, never loaded
            table = build_alerts(warehouse.scan(con, "flags", [day]), anomalies, covered)
        finally:
            con.close()
    flags = sum(table["flags"].to_pylist())
    if flags != detected["flags"]:
        raise ReconciliationError(
            f"alerts of {day}: they count {flags} flags, detect wrote {detected['flags']}"
        )
    rows = warehouse.write_table("alerts", day, table)
    summary = {
        "day": day.isoformat(),
        "alerts": rows,
        "alerts_by_kind": dict(sorted(value_counts(table["kind"]).items())),
        "alerts_by_severity": dict(sorted(value_counts(table["severity"]).items())),
        "flags": flags,
        "scored": anomalies is not None,
        "seconds": round(time.perf_counter() - started, 3),
    }
    warehouse.write_json("runs", day, "alerts.json", summary)
    log.info("alerts %s: %d alerts of %d flags in %.1fs", day, rows, flags, summary["seconds"])
    return summary


def train(end: date, window_days: int, settings: Settings) -> dict[str, Any]:
    """Train the behaviour model on the days up to `end` and store it under models/."""
    from pipeline.behaviour.scoring import train_model

    return train_model(end, window_days, _warehouse(settings), settings, Path(settings.models_dir))


def evaluate(days: list[date], truth_path: str, settings: Settings, k: int = 10) -> dict[str, Any]:
    """The partner-day anomalies of `days` against a ground-truth CSV (day, partner_id, ...): the
    ranking without a threshold, the alerts the review queue receives, and the detectors
    compared on the scoring model's training window and these days."""
    import pandas as pd
    import pyarrow as pa

    from pipeline.behaviour.metrics import alert_figures, ranking_figures, with_alert_rank
    from pipeline.behaviour.scoring import compare_detectors_on
    from pipeline.behaviour.store import load_model

    warehouse = _warehouse(settings)
    scored = [warehouse.read_partition("anomalies", d) for d in days]
    scores = pa.concat_tables(scored).to_pandas()
    scores = scores[scores["entity_kind"] == "partner_day"].reset_index(drop=True)
    if scores.empty:
        raise MissingInput(f"no anomaly scores for {days[0]} .. {days[-1]}: train, then run")
    truth = pd.read_csv(truth_path, dtype=str)
    truth["day"] = pd.to_datetime(truth["day"]).dt.date
    truth = truth[truth["day"].isin(days)]
    version = max(scores["model_version"])
    _, metadata = load_model(Path(settings.models_dir), scores["model_name"].iloc[0], version)
    window = metadata["window"]
    first, last = date.fromisoformat(window["start"]), date.fromisoformat(window["end"])
    train_days = [first + timedelta(n) for n in range((last - first).days + 1)]
    return {
        "days": len(scores["day"].unique()),
        "injected": len(truth[["day", "partner_id"]].drop_duplicates()),
        "model_version": version,
        "ranking": {
            "what": f"every scored partner-day ranked by score, no threshold: precision@{k} is "
            f"the mean share of injected anomalies in a day's top {k}, recall@{k} the share of "
            f"them ranked in their day's top {k}",
            **ranking_figures(scores, truth, k),
        },
        "alerts": {
            "what": f"what the review queue receives: a day's partner-days above the model's "
            f"alert threshold, ranked by score, its top {k} at most; recall@{k} is the share "
            f"of injected anomalies alerted in their day's top {k}, most_false_in_top_{k} the "
            f"most alerts in one day's top {k} that are not injected",
            **alert_figures(with_alert_rank(scores), truth, k),
        },
        "detector_comparison": compare_detectors_on(train_days, days, truth, warehouse, settings),
    }


def _reconcile(ingest: dict[str, Any], rows_in_warehouse: int, quarantined: int) -> None:
    kind = ingest["kind"]
    for f in ingest["files"]:
        accounted = f["valid"] + sum(f["quarantined"].values()) + f["duplicates_dropped"]
        if f["read"] != accounted:
            raise ReconciliationError(
                f"{kind} file {f['file']}: read {f['read']} but accounted for {accounted}"
            )
    totals = ingest["totals"]
    if totals["valid"] != rows_in_warehouse or totals["quarantined"] != quarantined:
        raise ReconciliationError(
            f"{kind} of {ingest['day']}: manifest says {totals['valid']} valid and "
            f"{totals['quarantined']} quarantined, the warehouse holds {rows_in_warehouse} "
            f"and {quarantined}"
        )


def publish(day: date, settings: Settings) -> dict[str, Any]:
    """Checks the day's counts reconcile, upserts its alerts into the review store and
    writes its run manifest (inputs, counts, config, version, review counts). The report follows
    as its own step."""
    import pyarrow.compute as pc

    from pipeline.review.publish import publish_day
    from pipeline.schema import UNKNOWN_PARTNER

    warehouse = _warehouse(settings)
    parts = {
        name: warehouse.read_json("runs", day, f"{name}.json")
        for name in ("ingest-access", "ingest-consent", "detect", "alerts")
    }
    missing = [name for name, part in parts.items() if part is None]
    if missing:
        raise MissingInput(f"cannot publish {day}: step(s) {', '.join(missing)} have not run")
    # counts from footers and single columns: a 10M-event day is never loaded whole here
    quarantine = warehouse.read_partition("quarantine", day, columns=["kind"])
    for kind in ("access", "consent"):
        ingest = parts[f"ingest-{kind}"]
        rows = warehouse.row_count(kind, day)
        quarantined = int(pc.sum(pc.equal(quarantine["kind"], kind)).as_py() or 0)
        _reconcile(ingest, rows, quarantined)
    flag_rows = warehouse.row_count("flags", day)
    if flag_rows != parts["detect"]["flags"]:
        raise ReconciliationError(
            f"flags of {day}: detect wrote {parts['detect']['flags']}, "
            f"the warehouse holds {flag_rows}"
        )
    # flags by partner from the day's alerts (a row per app and rule), not from the flags
    alerts = warehouse.read_partition("alerts", day, columns=["partner_id", "flags"])
    by_partner: Counter[str] = Counter()
    for partner, n in zip(
        pc.fill_null(alerts["partner_id"], UNKNOWN_PARTNER).to_pylist(),
        alerts["flags"].to_pylist(),
        strict=True,
    ):
        if n:
            by_partner[partner] += n
    manifest = {
        "day": day.isoformat(),
        "version": pipeline_version(),
        "landing": settings.landing,
        "warehouse": settings.warehouse,
        "config": settings.to_dict(),
        "inputs": {
            kind: [
                {k: f[k] for k in ("file", "size", "sha256")}
                for f in parts[f"ingest-{kind}"]["files"]
            ]
            for kind in ("access", "consent")
        },
        "registry_sha256": parts["detect"]["registry_sha256"],
        "counts": {kind: parts[f"ingest-{kind}"]["totals"] for kind in ("access", "consent")},
        "quarantine_reasons": {
            kind: parts[f"ingest-{kind}"]["quarantine_reasons"] for kind in ("access", "consent")
        },
        "files": {kind: parts[f"ingest-{kind}"]["files"] for kind in ("access", "consent")},
        "anomalies": warehouse.read_json("runs", day, "score.json"),
        # accesses judged and not judged, per partner and reason (detect/coverage.py)
        "access_coverage": warehouse.read_json("runs", day, "coverage.json"),
        "alerts": parts["alerts"],
        "flags": {
            "total": flag_rows,
            "by_rule": parts["detect"]["flags_by_rule"],
            "by_partner": dict(sorted(by_partner.items())),
        },
        "review": publish_day(day, settings),
    }
    warehouse.write_json("runs", day, MANIFEST, manifest)
    summary_keys = ("day", "counts", "quarantine_reasons", "flags", "alerts", "anomalies", "review")
    return {k: manifest[k] for k in summary_keys}


def report(day: date, settings: Settings, end: date | None = None) -> dict[str, Any]:
    """The report of `day` (or of `day` .. `end`): report.html, summary.json and digest.md
    under reports/date=D/ (or reports/range=D1_D2/) from the alerts partitions; returns the
    summary with the notifications it calls for."""
    from pipeline.report.charts import report_charts
    from pipeline.report.digest import digest_markdown
    from pipeline.report.figures import gather
    from pipeline.report.notifications import alerts_for
    from pipeline.report.render import render_html

    started = time.perf_counter()
    end = end or day
    if end < day:
        raise ValueError(f"report: end {end} is before start {day}")
    summary, trend = gather(day, end, settings)
    summary["notifications"] = [
        {"kind": a.kind, "subject": a.subject} for a in alerts_for(summary, settings)
    ]
    warehouse = _warehouse(settings)
    label = summary["report"]
    html = render_html(summary, trend, report_charts(summary, trend), pipeline_version())
    summary["files"] = {
        "html": warehouse.write_report_file(label, "report.html", html),
        "digest": warehouse.report_file(label, "digest.md"),
        "summary": warehouse.report_file(label, "summary.json"),
    }
    warehouse.write_report_file(
        label, "digest.md", digest_markdown(summary, summary["files"]["html"])
    )
    warehouse.write_report_file(label, "summary.json", json.dumps(summary, indent=2, default=str))
    log.info(
        "report %s: %d flags in %d alerts, %d notifications in %.1fs",
        label,
        summary["totals"]["flags"],
        summary["totals"]["alerts"],
        len(summary["notifications"]),
        time.perf_counter() - started,
    )
    return summary


def alerts_sent(day: date, settings: Settings) -> set[str]:
    """Subjects of the day's alerts already delivered (a retried alert task skips them)."""
    record = _warehouse(settings).read_json("runs", day, ALERTS_SENT)
    return set(record["subjects"]) if record else set()


def record_alert_sent(day: date, settings: Settings, subject: str) -> None:
    """Note one delivered alert of the day, right after it went out."""
    subjects = sorted(alerts_sent(day, settings) | {subject})
    _warehouse(settings).write_json("runs", day, ALERTS_SENT, {"subjects": subjects})


def run_day(
    day: date, settings: Settings, on_lines: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """Every step for one day, in order."""
    missing = missing_markers(day, settings)
    if missing:
        raise MissingInput(
            f"missing input for {day}: {', '.join(missing)} not found in {settings.landing}"
        )
    ingest_access(day, settings, on_lines)
    ingest_consent(day, settings, on_lines)
    catch_up_consent(day, settings)
    detect(day, settings)
    score(day, settings)
    alerts(day, settings)
    published = publish(day, settings)
    report(day, settings)
    return published
