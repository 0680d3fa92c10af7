"""`access-audit review …` against a store on SQLite and PostgreSQL: alerts and series listed,
shown with their flags, decided; errors on one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.detect.alert_ids import rule_alert_id
from pipeline.review.store import AlertFilter, ReviewStore
from pipeline.warehouse import Warehouse
from tests.review.literals import D1, D2, alert, alerts, behaviour_alert, flag, flags

F1 = rule_alert_id(D1, "app-chat", "NO_SIGNIN")
F2 = rule_alert_id(D1, "app-x", "SIGNIN_EXPIRED")
F3 = rule_alert_id(D2, "app-chat", "NO_SIGNIN")


@pytest.fixture
def seeded(store: ReviewStore) -> ReviewStore:
    store.upsert_day(
        D1,
        alerts(
            alert(),
            alert(app_id="app-x", rule="SIGNIN_EXPIRED", severity="medium"),
            behaviour_alert(),
        ),
    )
    store.upsert_day(D2, alerts(alert(D2, partner_id="p-video")))
    return store


@pytest.fixture
def config(tmp_path: Path) -> str:
    """A config whose warehouse holds D1's flags of F1 (for `show`)."""
    warehouse = tmp_path / "warehouse"
    Warehouse(str(warehouse)).write_table(
        "flags",
        D1,
        flags(*(flag(f"f{n}", user_id=f"u{n % 2}", request_id=f"req-{n}") for n in range(5))),
    )
    path = tmp_path / "config.toml"
    path.write_text(f'warehouse = "{warehouse}"\n')
    return str(path)


def review(url: str, *args: str) -> int:
    action, *rest = args
    return main(["review", action, "--db", url, *rest])


def listed(url: str, capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    assert review(url, "list", "--json", *args) == 0
    return [a["alert_id"] for a in json.loads(capsys.readouterr().out)["alerts"]]


def test_review_cli_shows_partner_data_as_it_is_not_as_markup(store, store_url, capsys):
    app = "chat[/]app"
    store.upsert_day(D1, alerts(alert(app_id=app, explanation="[link=https://evil.example]x")))
    assert review(store_url, "list") == 0
    assert app in capsys.readouterr().out
    assert review(store_url, "show", rule_alert_id(D1, app, "NO_SIGNIN")) == 0
    shown = capsys.readouterr().out
    assert app in shown and "[link=https://evil.example]x" in shown


def test_review_cli_list_filters_and_sorts(seeded, store_url, capsys):
    assert listed(store_url, capsys, "--kind", "rule", "--sort", "day")[-1] == F3
    assert listed(store_url, capsys, "--partner", "p-video") == [F3]
    assert listed(
        store_url,
        capsys,
        "--start",
        "2026-03-10",
        "--end",
        "2026-03-10",
        "--rule",
        "SIGNIN_EXPIRED",
    ) == [F2]
    assert len(listed(store_url, capsys, "--kind", "rule", "--per-page", "2", "--page", "2")) == 1
    series = seeded.alert(F1).series_id
    assert series is not None
    assert listed(store_url, capsys, "--series", series, "--sort", "day") == [F1, F3]


def test_review_cli_lists_by_series(seeded, store_url, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    assert review(store_url, "list", "--by-series", "--json") == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert sorted(len(r["alerts"]) for r in rows) == [1, 1, 2]
    assert review(store_url, "list", "--by-series") == 0
    out = capsys.readouterr().out
    assert "3 series and lone alerts" in out and "2026-03-10 .. 2026-03-11 (2)" in out


def test_review_cli_list_prints_a_table(seeded, store_url, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    assert review(store_url, "list", "--status", "new", "--severity", "medium") == 0
    out = capsys.readouterr().out
    assert "2 alerts (page 1 of 1)" in out  # the behaviour alert and app-x's
    assert F2 in out and "SIGNIN_EXPIRED" in out and F1 not in out


def test_review_cli_decisions_reach_the_store_and_its_trail(seeded, store_url, capsys):
    assert review(store_url, "set-status", F1, F2, "--to", "triaged", "--as", "alice") == 0
    assert capsys.readouterr().out.strip() == "2 alert(s) set to triaged"
    assert (
        review(store_url, "set-status", F1, "--to", "confirmed", "--note", "real", "--as", "bob")
        == 0
    )
    assert review(store_url, "assign", F2, "--to", "carol", "--as", "alice") == 0
    assert review(store_url, "note", F2, "--text", "partner asked", "--as", "carol") == 0
    capsys.readouterr()
    assert seeded.alert(F1).status == "confirmed"
    assert review(store_url, "show", F2, "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["alert"]["assignee"] == "carol"
    assert [(e["actor"], e["action"], e["to_value"], e["note"]) for e in shown["audit"]] == [
        ("carol", "note", None, "partner asked"),
        ("alice", "assign", "carol", None),
        ("alice", "status", "triaged", None),
    ]
    assert review(store_url, "assign", F2, "--none", "--as", "alice") == 0
    assert seeded.alert(F2).assignee is None


def test_review_cli_decides_a_whole_series(seeded, store_url, capsys):
    series = seeded.alert(F1).series_id
    assert series is not None
    assert review(store_url, "set-status", series, "--to", "false_positive", "--as", "al") == 0
    assert capsys.readouterr().out.strip() == "2 alert(s) set to false_positive"
    assert review(store_url, "assign", series, "--to", "bo", "--as", "al") == 0
    assert review(store_url, "note", series, "--text", "test app", "--as", "al") == 0
    assert {(a.status, a.assignee) for a in seeded.series(series).alerts} == {
        ("false_positive", "bo")
    }
    capsys.readouterr()
    assert review(store_url, "show", series, "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert [a["day"] for a in shown["alerts"]] == [str(D1), str(D2)]
    assert {e["via"] for e in shown["audit"]} == {f"series {series}"}


def test_review_cli_show_pages_an_alerts_flags(seeded, store_url, config, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    base = ["show", F1, "--config", config, "--json"]
    assert review(store_url, *base, "--limit", "2", "--offset", "1") == 0
    page = json.loads(capsys.readouterr().out)["flags"]
    assert (page["total"], [f["flag_id"] for f in page["rows"]]) == (5, ["f1", "f2"])
    assert review(store_url, *base, "--user", "u1") == 0
    page = json.loads(capsys.readouterr().out)["flags"]
    assert page["total"] == 2 and {f["user_id"] for f in page["rows"]} == {"u1"}
    assert review(store_url, "show", F1, "--config", config, "--request-id", "req-3") == 0
    out = capsys.readouterr().out
    assert "flags 1-1 of 1" in out and "req-3" in out and "evidence.users_by_consent" in out


def test_review_cli_actor_defaults_to_user(seeded, store_url, monkeypatch):
    monkeypatch.setenv("USER", "dana")
    assert review(store_url, "note", F1, "--text", "hello") == 0
    assert seeded.audit_trail(F1)[0].actor == "dana"


def test_review_cli_suppress_hides_matching_alerts(seeded, store_url, capsys):
    args = ["--app", "app-x", "--rule", "SIGNIN_EXPIRED", "--until", "2026-04-01"]
    assert review(store_url, "suppress", *args, "--reason", "known TTL bug", "--as", "al") == 0
    assert "suppression #" in capsys.readouterr().out
    assert F2 not in listed(store_url, capsys)
    assert F2 in listed(store_url, capsys, "--include-suppressed")
    assert seeded.alerts(AlertFilter(include_suppressed=True)).total == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("show", "zzz"), "unknown item 'zzz'"),
        (
            ("set-status", F1, "--to", "confirmed", "--as", "a"),
            None,
        ),
        (("note", F1, "--text", " ", "--as", "a"), "a note must be non-empty text"),
        (("list", "--per-page", "0"), "per_page must be from 1 to 500"),
        (("list", "--partner", "p\x00"), "filter partner_id: NUL characters are not allowed"),
        (("show", F1, "--limit", "0"), "limit must be from 1 to 10000"),
    ],
)
def test_review_cli_user_errors_exit_1_with_one_line(seeded, store_url, capsys, args, message):
    if message is None:  # a closed alert cannot be closed another way
        review(store_url, *args)
        args = ("set-status", F1, "--to", "resolved", "--as", "a")
        message = f"alert {F1} cannot move from confirmed to resolved (allowed: triaged)"
        capsys.readouterr()
    assert review(store_url, *args) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"access-audit: error: {message}") and err.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("list", "--start", "2026-02-30"), "'2026-02-30' is not a date"),
        (("set-status", "f1", "--to", "closed"), "invalid choice: 'closed'"),
        (("list", "--sort", "item_id"), "invalid choice: 'item_id'"),
        (("assign", "f1", "--to", "bob", "--none"), "not allowed with argument"),
    ],
)
def test_review_cli_usage_errors_exit_2_with_one_line(store_url, capsys, args, fragment):
    with pytest.raises(SystemExit) as exited:
        review(store_url, *args)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1


def test_review_cli_unreachable_store_exits_1_with_one_line(capsys):
    url = "postgresql://postgres:hunter2@127.0.0.1:1/nowhere"
    assert review(url, "list") == 1
    err = capsys.readouterr().err
    assert err.startswith("access-audit: error: cannot open review store postgresql://postgres:")
    assert "hunter2" not in err and err.count("\n") == 1


def test_review_cli_help_speaks_of_alerts(capsys):
    with pytest.raises(SystemExit):
        main(["review", "--help"])
    assert "alert" in capsys.readouterr().out
