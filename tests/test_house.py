"""Proof of the house (ARCHITECTURE.md): only warehouse.py lays out warehouse paths, and column
names are listed only in schema.py. Read from the package's source, so a new module that builds
`…/date=D/…` itself or keeps its own column list fails here."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from pipeline import schema

PACKAGE = Path(__file__).resolve().parents[1] / "pipeline"
# A partition folder being named: an f-string with `date=`/`range=` in it, or a string that
# starts a path component with it ("date=" + day, "range={}".format(...)). Prose is not caught.
IN_TEMPLATE = re.compile(r"\b(date|range)=")
COMPONENT = re.compile(r"^/?(date|range)=")
COLUMNS = {field.name for table in schema.TABLES.values() for field in table}
# Alembic migrations are frozen history: they must not change when schema.py does.
MIGRATIONS = PACKAGE / "review" / "migrations"


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if MIGRATIONS not in p.parents)


def partition_paths(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    in_fstrings = {
        id(part)
        for node in ast.walk(tree)
        if isinstance(node, ast.JoinedStr)
        for part in node.values
        if isinstance(part, ast.Constant)
    }
    return [
        f"{path.name}:{node.lineno}: {node.value!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and (
            COMPONENT.search(node.value)
            or (id(node) in in_fstrings and IN_TEMPLATE.search(node.value))
        )
    ]


def column_lists(path: Path) -> list[str]:
    """Module- or class-level names bound to a tuple/list/set of two or more column names."""
    tree = ast.parse(path.read_text(), str(path))
    scopes = [tree, *(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef))]
    found = []
    for scope in scopes:
        for node in scope.body:
            value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
            if not isinstance(value, ast.Tuple | ast.List | ast.Set):
                continue
            names = [e.value for e in value.elts if isinstance(e, ast.Constant)]
            if len(names) >= 2 and len(names) == len(value.elts) and set(names) <= COLUMNS:
                found.append(f"{path.name}:{node.lineno}: {names}")
    return found


def test_house_only_the_warehouse_module_builds_warehouse_paths():
    offenders = [hit for p in modules() if p.name != "warehouse.py" for hit in partition_paths(p)]
    assert offenders == []


def test_house_only_schema_defines_column_name_lists():
    offenders = [hit for p in modules() if p.name != "schema.py" for hit in column_lists(p)]
    assert offenders == []


def test_house_scanners_find_what_they_look_for(tmp_path: Path):
    """The scanners are not blind: a module of each kind of offence is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        '"""Writes <table>/date=D/ (a docstring may say so)."""\n'
        'KEYS = ("user_id", "app_id")\n'
        'HELP = "prose about reports/date=D/ is fine"\n'
        'def folder(root, day):\n    return f"{root}/flags/date={day}"\n'
        'def label(day):\n    return "range=" + day\n'
    )
    assert [hit.split(":")[1] for hit in partition_paths(bad)] == ["5", "7"]
    assert [hit.split(":")[1] for hit in column_lists(bad)] == ["2"]
