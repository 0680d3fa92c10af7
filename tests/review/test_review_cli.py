"""`access-audit review …` against a store on SQLite and PostgreSQL: output, decisions, errors."""

from __future__ import annotations

import json

import pytest

from pipeline.cli import main
from pipeline.review.store import ItemFilter, ReviewStore
from tests.review.literals import D1, D2, anomalies, anomaly, flag, flags


@pytest.fixture
def seeded(store: ReviewStore) -> ReviewStore:
    store.upsert_day(
        D1,
        flags(flag("f1"), flag("f2", rule="SIGNIN_EXPIRED", app_id="app-x", severity="medium")),
        anomalies(anomaly()),
    )
    store.upsert_day(D2, flags(flag("f3", day=D2, partner_id="p-video")), anomalies())
    return store


def review(url: str, *args: str) -> int:
    action, *rest = args
    return main(["review", action, "--db", url, *rest])


def listed(url: str, capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    assert review(url, "list", "--json", *args) == 0
    return [item["item_id"] for item in json.loads(capsys.readouterr().out)["items"]]


def test_review_cli_shows_partner_data_as_it_is_not_as_markup(store, store_url, capsys):
    app, user = "chat[/]app", "[link=https://evil.example]u1[/link]"
    store.upsert_day(D1, flags(flag("f1", app_id=app, user_id=user)), anomalies())
    assert review(store_url, "list") == 0
    assert app in capsys.readouterr().out
    assert review(store_url, "show", "f1") == 0
    shown = capsys.readouterr().out
    assert app in shown and user in shown


def test_review_cli_list_filters_and_sorts(seeded, store_url, capsys):
    assert listed(store_url, capsys, "--kind", "flag", "--sort", "day") == ["f1", "f2", "f3"]
    assert listed(store_url, capsys, "--partner", "p-video") == ["f3"]
    assert listed(
        store_url,
        capsys,
        "--start",
        "2026-03-10",
        "--end",
        "2026-03-10",
        "--rule",
        "SIGNIN_EXPIRED",
    ) == ["f2"]
    assert listed(
        store_url, capsys, "--kind", "flag", "--sort", "day", "--per-page", "2", "--page", "2"
    ) == ["f3"]


def test_review_cli_list_prints_a_table(seeded, store_url, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    assert review(store_url, "list", "--status", "new", "--severity", "medium") == 0
    out = capsys.readouterr().out
    assert "1 items (page 1 of 1)" in out
    assert "f2" in out and "SIGNIN_EXPIRED" in out and "f1" not in out


def test_review_cli_decisions_reach_the_store_and_its_trail(seeded, store_url, capsys):
    assert review(store_url, "set-status", "f1", "f3", "--to", "triaged", "--as", "alice") == 0
    assert capsys.readouterr().out.strip() == "2 item(s) set to triaged"
    assert (
        review(store_url, "set-status", "f1", "--to", "confirmed", "--note", "real", "--as", "bob")
        == 0
    )
    assert review(store_url, "assign", "f3", "--to", "carol", "--as", "alice") == 0
    assert review(store_url, "note", "f3", "--text", "partner asked", "--as", "carol") == 0
    capsys.readouterr()
    assert seeded.item("f1").status == "confirmed"
    assert review(store_url, "show", "f3", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["item"]["assignee"] == "carol"
    assert [(e["actor"], e["action"], e["to_value"], e["note"]) for e in shown["audit"]] == [
        ("carol", "note", None, "partner asked"),
        ("alice", "assign", "carol", None),
        ("alice", "status", "triaged", None),
    ]
    assert review(store_url, "assign", "f3", "--none", "--as", "alice") == 0
    assert seeded.item("f3").assignee is None


def test_review_cli_show_prints_facts_and_trail(seeded, store_url, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    review(store_url, "set-status", "f1", "--to", "resolved", "--as", "alice")
    capsys.readouterr()
    assert review(store_url, "show", "f1") == 0
    out = capsys.readouterr().out
    assert "evidence.partnership_scopes" in out and "resolved" in out and "alice" in out


def test_review_cli_actor_defaults_to_user(seeded, store_url, monkeypatch):
    monkeypatch.setenv("USER", "dana")
    assert review(store_url, "note", "f1", "--text", "hello") == 0
    assert seeded.audit_trail("f1")[0].actor == "dana"


def test_review_cli_suppress_hides_matching_items(seeded, store_url, capsys):
    assert (
        review(
            store_url,
            "suppress",
            "--app",
            "app-x",
            "--rule",
            "SIGNIN_EXPIRED",
            "--until",
            "2026-04-01",
            "--reason",
            "known TTL bug",
            "--as",
            "alice",
        )
        == 0
    )
    assert "suppression #" in capsys.readouterr().out
    assert "f2" not in listed(store_url, capsys)
    assert "f2" in listed(store_url, capsys, "--include-suppressed")
    assert seeded.items(ItemFilter(include_suppressed=True)).total == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("show", "zzz"), "unknown item 'zzz'"),
        (
            ("set-status", "f1", "--to", "new", "--as", "a"),
            "item f1 cannot move from new to new "
            "(allowed: triaged, confirmed, false_positive, resolved)",
        ),
        (("note", "f1", "--text", " ", "--as", "a"), "a note must be non-empty text"),
        (("list", "--per-page", "0"), "per_page must be from 1 to 500"),
        (("list", "--partner", "p\x00"), "filter partner_id: NUL characters are not allowed"),
    ],
)
def test_review_cli_user_errors_exit_1_with_one_line(seeded, store_url, capsys, args, message):
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
