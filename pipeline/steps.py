"""The pipeline's steps, one function each, shared by the CLI and the Airflow DAGs (one code path).

Each step takes the delivery day and the settings explicitly, records what it did in the day's
run folder, and returns a small JSON-able summary.
"""

from __future__ import annotations

import json
import logging
import posixpath
import time
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

    return Landing(settings.landing)


def _warehouse(settings: Settings) -> Any:
    from pipeline.warehouse import Warehouse

    return Warehouse(settings.warehouse)


def missing_markers(day: date, settings: Settings) -> list[str]:
    """The delivery markers of `day` that are not there yet (empty when the day is complete)."""
    from pipeline.readers.landing import KINDS, SUCCESS_MARKER

    landing = _landing(settings)
    return [
        f"{kind}/{day.isoformat()}/{SUCCESS_MARKER}"
        for kind in KINDS
        if not landing.is_complete(kind, day)
    ]


def _require_marker(kind: str, day: date, settings: Settings) -> None:
    if not _landing(settings).is_complete(kind, day):
        raise MissingInput(
            f"missing input: {settings.landing}/{kind}/{day.isoformat()}/_SUCCESS not found "
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
    seen = [(f["file"], f["size"], f.get("version", "")) for f in done["files"]]
    return seen == [(f.name, f.size, f.version) for f in landing.files("consent", day)]


def ensure_consent_history(day: date, settings: Settings) -> list[str]:
    """Ingest earlier consent deliveries the warehouse lacks, so detection sees days <= `day`.

    This is what makes a nightly run and a backfill of one day give the same flags.
    """
    caught_up = []
    for earlier in _landing(settings).days("consent"):
        if earlier < day and not _consent_is_current(earlier, settings):
            ingest_consent(earlier, settings)
            caught_up.append(earlier.isoformat())
    if caught_up:
        log.info("detect %s: ingested earlier consent deliveries %s", day, caught_up)
    return caught_up


def detect(day: date, settings: Settings) -> dict[str, Any]:
    """Warehouse access of <day> + consent of days <= day + registry → warehouse flags."""
    from pipeline.detect.registry import load_registry
    from pipeline.detect.shards import write_flags

    started = time.perf_counter()
    warehouse = _warehouse(settings)
    _require_marker("access", day, settings)
    _require_marker("consent", day, settings)
    if not warehouse.has_partition("access", day):
        raise MissingInput(f"access of {day} is not ingested yet: run ingest_access first")
    if not _consent_is_current(day, settings):
        raise MissingInput(f"consent of {day} is not ingested yet: run ingest_consent first")
    caught_up = ensure_consent_history(day, settings)
    registry, registry_sha256 = load_registry(_landing(settings))
    consent_days = [d for d in warehouse.partition_days("consent") if d <= day]
    by_rule = write_flags(day, warehouse, registry, consent_days, settings)
    flags = sum(by_rule.values())
    summary = {
        "day": day.isoformat(),
        "flags": flags,
        "flags_by_rule": dict(sorted(by_rule.items())),
        "consent_days_read": len(consent_days),
        "consent_days_caught_up": caught_up,
        "registry_sha256": registry_sha256,
        "registry_rows": registry.num_rows,
        "seconds": round(time.perf_counter() - started, 3),
    }
    warehouse.write_json("runs", day, "detect.json", summary)
    log.info("detect %s: %d flags %s in %.1fs", day, flags, dict(by_rule), summary["seconds"])
    return summary


def score(day: date, settings: Settings) -> dict[str, Any]:
    """The day's behaviour features → warehouse anomalies, with the newest model; skipped (not
    failed) while there is no model yet."""
    from pipeline.behaviour.scoring import score_day

    warehouse = _warehouse(settings)
    summary = score_day(day, warehouse, settings, Path(settings.models_dir))
    warehouse.write_json("runs", day, "score.json", summary)
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
    """Checks the day's counts reconcile, upserts its flags and alerts into the review store and
    writes its run manifest (inputs, counts, config, version, review counts). The report follows
    as its own step."""
    import pyarrow.compute as pc

    from pipeline.review.publish import publish_day
    from pipeline.schema import UNKNOWN_PARTNER
    from pipeline.tables import value_counts

    warehouse = _warehouse(settings)
    parts = {
        name: warehouse.read_json("runs", day, f"{name}.json")
        for name in ("ingest-access", "ingest-consent", "detect")
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
    flags = warehouse.read_partition("flags", day, columns=["partner_id"])
    if flags.num_rows != parts["detect"]["flags"]:
        raise ReconciliationError(
            f"flags of {day}: detect wrote {parts['detect']['flags']}, "
            f"the warehouse holds {flags.num_rows}"
        )
    by_partner = value_counts(pc.fill_null(flags["partner_id"], UNKNOWN_PARTNER))
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
        "flags": {
            "total": flags.num_rows,
            "by_rule": parts["detect"]["flags_by_rule"],
            "by_partner": dict(sorted(by_partner.items())),
        },
        "review": publish_day(day, settings),
    }
    warehouse.write_json("runs", day, MANIFEST, manifest)
    summary_keys = ("day", "counts", "quarantine_reasons", "flags", "anomalies", "review")
    return {k: manifest[k] for k in summary_keys}


def report(day: date, settings: Settings, end: date | None = None) -> dict[str, Any]:
    """The report of `day` (or of `day` .. `end`): report.html, summary.json and digest.md
    under reports/date=D/ (or reports/range=D1_D2/); returns the summary with its alerts."""
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
    summary["alerts"] = [
        {"kind": a.kind, "subject": a.subject} for a in alerts_for(summary, settings)
    ]
    warehouse = _warehouse(settings)
    label = summary["report"]
    html = render_html(summary, trend, report_charts(summary, trend), pipeline_version())
    summary["files"] = {
        "html": warehouse.write_report_file(label, "report.html", html),
        "digest": posixpath.join(warehouse.report_dir(label), "digest.md"),
        "summary": posixpath.join(warehouse.report_dir(label), "summary.json"),
    }
    warehouse.write_report_file(
        label, "digest.md", digest_markdown(summary, summary["files"]["html"])
    )
    warehouse.write_report_file(label, "summary.json", json.dumps(summary, indent=2, default=str))
    log.info(
        "report %s: %d flags, %d alerts in %.1fs",
        label,
        summary["totals"]["flags"],
        len(summary["alerts"]),
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
    detect(day, settings)
    score(day, settings)
    published = publish(day, settings)
    report(day, settings)
    return published
