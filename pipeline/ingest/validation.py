"""SQL that turns raw JSON lines into typed records or a quarantine reason, one batch at a time.

One DuckDB query per batch does the JSON parsing (two readings per line: values and types),
type checks, time parsing, route lookup and redaction, so there is no Python loop per record.

A reader of a real format hands its records over as typed columns instead (`f_<field>`, see
`typed`): the same query then takes each field's text and JSON type from its column rather than
parsing a line again, and every check, reason, redaction and hash after that is the same one.

Most lines are clean, so the query first asks a cheap question of every line (is each field of
the right JSON type, and is every value usable?) and evaluates
the ordered checks that name a reason only for the lines that fail it. DuckDB evaluates a CASE
branch only for the rows that reach it, which is what keeps the expensive part off clean lines.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.config import Settings
from pipeline.ingest import redact
from pipeline.schema import RFC3339

# Epoch milliseconds of 0001-01-01 and 10000-01-01: the range a timestamp can hold.
EPOCH_MS_MIN, EPOCH_MS_MAX = -62135596800000, 253402300800000
INTEGER_TYPES = "('BIGINT', 'UBIGINT')"
# The instants a timestamp may hold (what epoch milliseconds are kept to as well).
TIME_RANGE = "TIMESTAMPTZ '0001-01-01 00:00:00+00' AND TIMESTAMPTZ '9999-12-31 23:59:59.999999+00'"
CONTROL = r"[\x00-\x1f\x7f]"  # what an identifier may not hold (SPEC §2)
LACKING_ROUTE = "(v_resource IS NULL OR v_action IS NULL)"


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # string | time | status | enum | scopes
    required: bool = False
    choices: tuple[str, ...] = ()
    identifier: bool = False  # no control character allowed (SPEC §2)


@dataclass(frozen=True)
class RecordKind:
    """An input record type: its fields and the field that identifies a record."""

    name: str
    id_field: str
    fields: tuple[Field, ...]


ACCESS_KIND = RecordKind(
    "access",
    "request_id",
    (
        Field("request_id", "string", required=True, identifier=True),
        Field("event_time", "time", required=True),
        Field("app_id", "string", required=True, identifier=True),
        Field("user_id", "string", required=True, identifier=True),
        Field("resource", "string"),
        Field("action", "enum", choices=("read", "write", "delete")),
        Field("method", "string"),
        Field("path", "string"),
        Field("status", "status"),
        Field("thread_id", "string"),
        Field("ip", "string"),
        Field("user_agent", "string"),
    ),
)

CONSENT_KIND = RecordKind(
    "consent",
    "event_id",
    (
        Field("event_id", "string", required=True, identifier=True),
        Field("event_time", "time", required=True),
        Field("user_id", "string", required=True, identifier=True),
        Field("app_id", "string", required=True, identifier=True),
        Field("event_type", "enum", required=True, choices=("grant", "revoke")),
        Field("scopes", "scopes"),
    ),
)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _list(values: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(_quote(v) for v in values) + "]::VARCHAR[]"


def _type_word(type_column: str) -> str:
    """JSON type names as a person says them ('a string'), for quarantine details."""
    words = {
        "VARCHAR": "a string",
        "BIGINT": "an integer",
        "UBIGINT": "an integer",
        "DOUBLE": "a number",
        "BOOLEAN": "a boolean",
        "ARRAY": "a list",
        "OBJECT": "an object",
    }
    cases = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in words.items())
    return f"(CASE {type_column} {cases} ELSE lower({type_column}) END)"


def _json_type(field: Field) -> str:
    """The field's JSON type name; NULL where it is absent or null."""
    return f"t_{field.name}"


def _json_path(field: Field, within: str = "") -> str:
    return _quote(f'$."{field.name}"{within}')


def _is_integer(field: Field) -> str:
    """An integer literal: JSON reads one past 64 bits as a double; it is still an integer (one
    out of range), not a number of another kind."""
    t = _json_type(field)
    return (
        f"({t} IN {INTEGER_TYPES} "
        f"OR ({t} = 'DOUBLE' AND regexp_full_match(s.{field.name}, '-?[0-9]+')))"
    )


def _json_value(field: Field) -> str:
    """The field's JSON text (of its first occurrence, as every other reading takes): parsed
    again, so only for the few lines that are rejected."""
    return f"json_extract(raw, {_json_path(field)})"


def _is_string(field: Field) -> str:
    return f"{_json_type(field)} = 'VARCHAR'"


def _checks(field: Field) -> list[tuple[str, str, str]]:
    """(failing condition, reason, detail) for one field, in the order they are reported."""
    n, t, v = field.name, f"({_json_type(field)})", f"v_{field.name}"
    checks = []
    if field.required:
        checks.append((f"{t} IS NULL", "missing_field", _quote(f"{n} is required")))
    wanted = {"string": "VARCHAR", "enum": "VARCHAR", "scopes": "ARRAY"}.get(field.kind)
    if field.kind == "scopes":  # a revoke withdraws the whole grant: its scopes are ignored
        t = f"(CASE WHEN v_event_type = 'grant' THEN {t} END)"
    if wanted:
        word = {"VARCHAR": "string", "ARRAY": "list"}[wanted]
        checks.append(
            (
                f"{t} IS NOT NULL AND {t} <> '{wanted}'",
                "wrong_type",
                f"{_quote(n + ' must be a ' + word + ', not ')} || {_type_word(t)}",
            )
        )
    if field.kind in ("string", "enum") and field.required:
        checks.append((f"{v} = ''", "empty_field", _quote(f"{n} is empty")))
    if field.identifier:
        checks.append(
            (
                f"{_is_string(field)} AND regexp_matches({v}, {_quote(CONTROL)})",
                "control_character",
                _quote(f"{n} holds a control character (U+0000-U+001F or U+007F)"),
            )
        )
    if field.kind == "enum":
        checks.append(
            (
                f"{t} = 'VARCHAR' AND NOT list_contains({_list(field.choices)}, {v})",
                "unknown_value",
                f"{_quote(n + ' ')} || left({v}, 60) || "
                f"{_quote(' is not one of ' + ', '.join(field.choices))}",
            )
        )
    if field.kind == "scopes":
        checks.append(
            (
                f"{t} = 'ARRAY' AND {v} IS NULL",
                "wrong_type",
                _quote(f"{n} must be a list of strings"),
            )
        )
    if field.kind == "time":
        checks.append(
            (
                f"{t} IS NOT NULL AND {t} <> 'VARCHAR' AND NOT {_is_integer(field)}",
                "wrong_type",
                f"{_quote(n + ' must be an RFC 3339 string or integer epoch milliseconds, not ')} "
                f"|| {_type_word(t)}",
            )
        )
        checks.append(
            (
                f"{v} IS NULL",
                "invalid_time",
                f"{_quote(n + ' ')} || left({_json_value(field)}::VARCHAR, 60) || "
                f"{_quote(' has no UTC offset, is not a real date or is out of range')}",
            )
        )
    if field.kind == "status":
        checks.append(
            (
                f"{t} IS NOT NULL AND NOT {_is_integer(field)}",
                "wrong_type",
                f"{_quote(n + ' must be an integer, not ')} || {_type_word(t)}",
            )
        )
        checks.append(
            (f"{v} IS NULL", "invalid_value", _quote(f"{n} must be an HTTP status from 100 to 599"))
        )
    return checks


def _clean(field: Field) -> str:
    """A cheap condition that holds only where none of the field's checks fails (NULL counts as
    not clean: such lines simply take the full checks)."""
    v = f"v_{field.name}"
    if field.kind in ("string", "enum"):
        condition = _is_string(field)
        if field.required:
            condition += f" AND {v} <> ''"
        if field.identifier:
            condition += f" AND NOT regexp_matches({v}, {_quote(CONTROL)})"
        if field.kind == "enum":
            condition += f" AND list_contains({_list(field.choices)}, {v})"
        return condition if field.required else f"({_json_type(field)} IS NULL OR {condition})"
    if field.kind in ("time", "status"):  # a usable value is of an accepted type
        return f"{v} IS NOT NULL"
    if field.kind == "scopes":  # ignored on a revoke; else absent, or a list of strings
        return f"(v_event_type <> 'grant' OR {_json_type(field)} IS NULL OR {v} IS NOT NULL)"
    raise ValueError(field.kind)


def _string_list(t: str, document: str, elements: str) -> str:
    """A JSON list of strings in `document` (its elements at path `elements`) as a list."""
    return (
        f"CASE WHEN {t} = 'ARRAY' AND list_bool_and(list_transform("
        f"json_extract({document}, {elements}), lambda x: json_type(x) = 'VARCHAR')) IS NOT FALSE "
        f"THEN json_extract_string({document}, {elements}) END"
    )


def _value(field: Field, typed: dict[str, str] | None = None) -> str:
    """The typed value of a field; NULL where it is absent or unusable."""
    n, t = field.name, f"({_json_type(field)})"
    if field.kind in ("string", "enum"):
        return f"CASE WHEN {_is_string(field)} THEN s.{n} END"
    if field.kind == "scopes":
        if typed is not None:
            return _typed_list(field, typed.get(n, "VARCHAR"))
        return _string_list(t, "raw", _json_path(field, "[*]"))
    if field.kind == "status":
        return (
            f"CASE WHEN {t} IS NULL THEN 200 WHEN {_is_integer(field)} "
            f"THEN CASE WHEN TRY_CAST(s.{n} AS BIGINT) BETWEEN 100 AND 599 "
            f"THEN TRY_CAST(s.{n} AS INTEGER) END END"
        )
    if field.kind == "time":
        parsed = f"TRY_CAST(upper(s.{n}) AS TIMESTAMPTZ)"  # computed once (a common expression)
        return (
            f"CASE WHEN {_is_string(field)} THEN CASE WHEN regexp_full_match(s.{n}, "
            f"{_quote(RFC3339)}) AND {parsed} BETWEEN {TIME_RANGE} THEN {parsed} END "
            f"WHEN {_is_integer(field)} AND TRY_CAST(s.{n} AS BIGINT) "
            f"BETWEEN {EPOCH_MS_MIN} AND {EPOCH_MS_MAX - 1} "
            f"THEN epoch_ms(TRY_CAST(s.{n} AS BIGINT))::TIMESTAMPTZ END"
        )
    raise ValueError(field.kind)


def _route_sql(settings: Settings) -> tuple[str, str, str]:
    """The route table's answer for events that lack resource or action (only those rows
    evaluate the regexes): the number of the first matching route, then resource and action."""
    matched = " ".join(
        f"WHEN regexp_matches(route_path, {_quote(r.path_regex)}) THEN {i}"
        for i, r in enumerate(settings.routes, 1)
    )
    route = (
        f"CASE WHEN {LACKING_ROUTE} THEN (CASE {matched} END) END" if settings.routes else "NULL"
    )
    by_method = " ".join(f"WHEN {_quote(m)} THEN {_quote(a)}" for m, a in settings.method_actions)
    resources = _list([r.resource for r in settings.routes])
    actions = "[" + ", ".join(_quote(r.action) if r.action else "NULL" for r in settings.routes)
    resource = f"coalesce(v_resource, list_extract({resources}, route_no))"
    action = (
        f"coalesce(v_action, CASE WHEN route_no IS NOT NULL THEN coalesce("
        f"list_extract({actions}]::VARCHAR[], route_no), "
        f"CASE upper(v_method) {by_method} END) END)"
    )
    return route, resource, action


def _raw_text(kind: RecordKind, settings: Settings) -> str:
    """The raw line as quarantine stores it, before secrets are replaced: no message content.

    A JSON object keeps only the fields the format defines (nested objects removed) and the
    names of the others; other text has body-like members cut out by pattern.
    """

    def kept_value(f: Field) -> str:
        nested = f"{_json_type(f)} IN ('OBJECT', 'ARRAY')"
        if f.kind == "scopes":  # a valid scopes list is kept
            nested += f" AND v_{f.name} IS NULL"
        removed = "'\"(removed)\"'::JSON"
        return f"'{f.name}', CASE WHEN {nested} THEN {removed} ELSE {_json_value(f)} END"

    kept = ", ".join(kept_value(f) for f in kind.fields)
    names = _list([f.name for f in kind.fields])
    others = f"list_filter(json_keys(raw), lambda k: NOT list_contains({names}, k))"
    # merged onto {} as a patch, so that absent (null) fields are left out
    members = f"json_object({kept}, '_other_fields', to_json({others}))"
    as_object = f"json_merge_patch('{{}}', {members})::VARCHAR"
    # A name written with escapes (\u0074oken) would pass the patterns: text from the first
    # escape on is not kept.
    # (a line of line breaks only is kept as it is: quarantine keeps some text of every line)
    line = "coalesce(nullif(rtrim(raw, chr(13) || chr(10)), ''), raw)"
    unescaped = (
        f"CASE WHEN contains({line}, '\\u') "
        f"THEN left({line}, strpos({line}, '\\u') - 1) || '…(cut at an escape)' ELSE {line} END"
    )
    no_bodies = (
        f"regexp_replace({_unknown_values_removed(unescaped, kind)}, "
        f"{_quote(redact.json_body_pattern(settings.body_fields))}, "
        f"'\\1\"{redact.REDACTED}\"', 'g')"
    )
    return f"CASE WHEN is_object THEN {as_object} ELSE {no_bodies} END"


# Marks a member name of the kind's own fields in text that is not a JSON object for a moment
# (a noncharacter: taken out of the line first, so a line cannot forge it).
_KNOWN = "\ufdd0"


def _unknown_values_removed(text: str, kind: RecordKind) -> str:
    """In a line that is not a JSON object, the string and scalar values of members other than
    the kind's fields are removed, as a JSON object's are (their names stay)."""
    fields = "|".join(f.name for f in kind.fields)
    known, mark = _quote(rf"([\"'])({fields})([\"']\s*:)"), _quote(rf"\1{_KNOWN}\2\3")
    value = r"(?:\"(?:[^\"\\]|\\.)*\"?|'(?:[^'\\]|\\.)*'?|[^\s\"'{\[,][^,}\]]*)"
    unknown = _quote(rf"([\"'])([^\"'\\{_KNOWN}][^\"'\\]*)?([\"']\s*:\s*){value}")
    removed = _quote(r'\1\2\3"(removed)"')
    marked = f"regexp_replace(replace({text}, '{_KNOWN}', '\ufffd'), {known}, {mark}, 'g')"
    return f"replace(regexp_replace({marked}, {unknown}, {removed}, 'g'), '{_KNOWN}', '')"


def redact_path_sql(column: str, settings: Settings) -> str:
    """Secret parameters and credentials of a path replaced (cheap for paths without any)."""
    return redact.path_sql(column, settings.secret_names)


def redact_text_sql(column: str, settings: Settings) -> str:
    """Secrets in a free-text column replaced (cheap for text without any)."""
    return redact.text_sql(column, settings.secret_names)


def _routing(settings: Settings) -> tuple[list[tuple[str, str]], tuple[str, str, str]]:
    """Query steps that add resource and action from the route table where absent, and the
    check that fails when neither gives them."""
    route_no, resource, action = _route_sql(settings)
    route_path = f"CASE WHEN {LACKING_ROUTE} THEN regexp_replace(v_path, '(?s)[?#;].*$', '') END"
    steps = [
        ("pathed", f"SELECT *, {route_path} AS route_path FROM valued"),
        ("numbered", f"SELECT *, {route_no} AS route_no FROM pathed"),
        ("routed", f"SELECT *, {resource} AS resource, {action} AS action FROM numbered"),
    ]
    check = (
        "resource IS NULL OR action IS NULL",
        "unknown_route",
        "'no resource/action given, and method ' || coalesce(v_method, '(none)') || ' ' "
        "|| left(coalesce(route_path, '(no path)'), 80) || ' matches no route'",
    )
    return steps, check


# A typed column's JSON type name, as json_type names the type of a JSON value.
_JSON_TYPES = {"VARCHAR": "VARCHAR", "BOOLEAN": "BOOLEAN", "DOUBLE": "DOUBLE", "FLOAT": "DOUBLE"}
_JSON_TYPES |= {t: "BIGINT" for t in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT")}


def typed_column(name: str) -> str:
    """The column in which a reader hands validation a canonical field's value."""
    return f"f_{name}"


def _typed_text_and_type(field: Field, sql_type: str) -> tuple[str, str]:
    """What the JSON readings would give for a typed column: its text (a string's value, any
    other value's JSON text) and its JSON type name (NULL where it is NULL). A JSON column is
    asked its type; a column of another type is that type's JSON type."""
    c = typed_column(field.name)
    if sql_type == "JSON" or (sql_type not in _JSON_TYPES and not sql_type.endswith("[]")):
        j = _as_json(c, sql_type)
        t = f"nullif(json_type({j}), 'NULL')"
        return f"CASE WHEN json_type({j}) = 'VARCHAR' THEN {j} ->> '$' ELSE {j}::VARCHAR END", t
    json_type = "ARRAY" if sql_type.endswith("[]") else _JSON_TYPES[sql_type]
    text = c if json_type == "VARCHAR" else f"to_json({c})::VARCHAR"
    return text, f"CASE WHEN {c} IS NOT NULL THEN '{json_type}' END"


def _as_json(column: str, sql_type: str) -> str:
    """A typed column as JSON. A JSON column reaches validation through Arrow as text: cast back
    (else json_object would take it for a string)."""
    return f"{column}::JSON" if sql_type == "JSON" else f"to_json({column})"


def _typed_list(field: Field, sql_type: str) -> str:
    """A typed scopes column as the list of strings it holds; NULL where it is none."""
    c, t = typed_column(field.name), f"({_json_type(field)})"
    if sql_type == "VARCHAR[]":  # a NULL element is not a string
        every = f"list_bool_and(list_transform({c}, lambda x: x IS NOT NULL))"
        return f"CASE WHEN {every} IS NOT FALSE THEN {c} END"
    if sql_type == "JSON":
        return _string_list(t, _as_json(c, sql_type), "'$[*]'")
    return "NULL::VARCHAR[]"  # a list of other values, or no list: never a list of strings


def _typed_steps(kind: RecordKind, typed: dict[str, str], source: str) -> list[tuple[str, str]]:
    """The steps that give what the JSON readings give (s, the t_ types, is_json, is_object)
    from a reader's typed columns. `converted` marks the rows it made of a record; the others
    (a line its parse made nothing of, a record it refused) are taken as lines, as ever."""
    absent = "".join(
        f", NULL::VARCHAR AS {typed_column(f.name)}" for f in kind.fields if f.name not in typed
    )
    pairs = [(f, _typed_text_and_type(f, typed.get(f.name, "VARCHAR"))) for f in kind.fields]
    texts = ", ".join(f"{f.name} := {text}" for f, (text, _) in pairs)
    types = ", ".join(f"{t} AS {_json_type(f)}" for f, (_, t) in pairs)
    return [
        (
            "typed",
            f"SELECT *, CASE WHEN converted THEN true WHEN encoding_ok THEN json_valid(raw) "
            f"ELSE false END AS is_json, struct_pack({texts}) AS s, {types} "
            f"FROM (SELECT *{absent} FROM {source})",
        ),
        (
            "parsed",
            f"SELECT *, converted OR is_json AND {_STARTS_AS_OBJECT} AS is_object FROM typed",
        ),
    ]


def _typed_raw(typed: dict[str, str], redact_all: bool) -> str:
    """The canonical record as JSON text, built only where quarantine or redaction needs it
    (the reader hands the line itself only where it made no record of it)."""
    members = ", ".join(
        f"'{name}', {_as_json(typed_column(name), 'JSON') if t == 'JSON' else typed_column(name)}"
        for name, t in typed.items()
    )
    return (
        f"CASE WHEN NOT converted THEN raw WHEN reason IS NOT NULL OR {redact_all} "
        f"THEN json_object({members})::VARCHAR END"
    )


def text_struct(kind: RecordKind) -> str:
    """json_transform's structure that reads every field of the kind as plain text."""
    return "{" + ", ".join(f'"{f.name}": "VARCHAR"' for f in kind.fields) + "}"


def field_paths(kind: RecordKind) -> str:
    """The JSON paths of the kind's fields, as json_type takes them."""
    return "[" + ", ".join(_json_path(f) for f in kind.fields) + "]"


# valid JSON that starts with '{' is an object (the first test avoids copying the line)
_STARTS_AS_OBJECT = (
    "(starts_with(raw, '{') OR starts_with(ltrim(raw, ' ' || chr(9) || chr(10) || chr(13)), '{'))"
)


def _json_steps(kind: RecordKind, source: str) -> list[tuple[str, str]]:
    """The steps that read a line's JSON: s (the fields as text), the t_ types, is_object."""
    # The line parsed twice: into plain strings (unescaped values; numbers as their text), and
    # for the JSON type of each field, the cheapest two readings DuckDB offers. A line that is
    # not JSON fails the first (caught by try); only those lines are asked json_valid.
    as_text, paths = _quote(text_struct(kind)), field_paths(kind)
    types = ", ".join(
        f"nullif(types[{i}], 'NULL') AS {_json_type(f)}" for i, f in enumerate(kind.fields, 1)
    )
    return [
        (
            "lines",
            f"SELECT *, CASE WHEN encoding_ok THEN try(json_transform(raw, {as_text})) END"
            f" AS s FROM {source}",
        ),
        (
            "objects",
            f"SELECT *, is_json AND {_STARTS_AS_OBJECT} "
            "AS is_object FROM (SELECT *, CASE WHEN s IS NOT NULL THEN true "
            "WHEN encoding_ok THEN json_valid(raw) ELSE false END AS is_json FROM lines)",
        ),
        (
            "parsed",
            f"SELECT *, {types} FROM (SELECT *, CASE WHEN is_object THEN json_type(raw, {paths}) "
            "END AS types FROM objects)",
        ),
    ]


def validation_sql(
    kind: RecordKind,
    settings: Settings,
    source: str = "batch",
    redact_all: bool = False,
    typed: dict[str, str] | None = None,
) -> str:
    """A query over `source` (source_line, raw, encoding_ok) giving typed columns or a reason.

    The redacted raw text comes with rejected lines only, unless `redact_all`. With `typed`
    (canonical field → DuckDB type of its column `f_<field>`), `source` is a reader's typed
    records instead: those columns, `converted` (the row is a record the reader made), and
    `raw` (the line, where it is not).
    """
    values = ", ".join(f"{_value(f, typed)} AS v_{f.name}" for f in kind.fields)
    checks = [
        ("NOT encoding_ok", "invalid_encoding", "'the line is not valid UTF-8'"),
        ("NOT is_json", "invalid_json", "'the line is not valid JSON'"),
        ("NOT is_object", "not_a_json_object", "'the line is JSON but not an object'"),
    ]
    checks += [check for f in kind.fields for check in _checks(f)]
    clean = ["is_object"] + [_clean(f) for f in kind.fields]
    steps = _typed_steps(kind, typed, source) if typed is not None else _json_steps(kind, source)
    steps.append(("valued", f"SELECT *, {values} FROM parsed"))
    if kind is ACCESS_KIND:  # resource and action come from the route table where absent
        route_steps, route_check = _routing(settings)
        steps += route_steps
        checks.append(route_check)
        clean.append("resource IS NOT NULL AND action IS NOT NULL")
    reason = "CASE " + " ".join(f"WHEN {c} THEN '{r}'" for c, r, _ in checks) + " END"
    detail = "CASE " + " ".join(f"WHEN {c} THEN {d}" for c, _, d in checks) + " END"
    # the ordered checks run only on lines that are not plainly clean
    judged = f"CASE WHEN {' AND '.join(clean)} THEN NULL ELSE {reason} END"
    steps.append(("judged", f"SELECT *, {judged} AS reason FROM {steps[-1][0]}"))
    if typed is not None:  # the text that quarantine keeps, where it keeps any
        raw = _typed_raw(typed, redact_all)
        steps.append(("judged_typed", f"SELECT * REPLACE ({raw} AS raw) FROM judged"))
    # the texts to redact, each a column of its own so the redaction names it, not its formula
    steps.append(
        (
            "texts",
            f"SELECT *, CASE WHEN reason IS NOT NULL THEN left({detail}, 300) END AS detail_text,"
            f" CASE WHEN reason IS NOT NULL OR {redact_all} THEN {_raw_text(kind, settings)} END"
            f" AS raw_text FROM {steps[-1][0]}",
        )
    )
    ctes = ",\n".join(f"{name} AS (\n    {body}\n)" for name, body in steps)
    # A huge line is cut before its redaction too (far past what is kept, so that a secret cut
    # there could only move into what is kept behind a longer one that was replaced).
    reach = max(1 << 16, 16 * int(settings.raw_max_chars))
    no_secrets = redact.text_sql(f"left(raw_text, {reach})", settings.secret_names, prefilter=False)
    return f"""
WITH {ctes}
SELECT source_line, reason,
       {redact_text_sql("detail_text", settings)} AS detail,
       v_{kind.id_field} AS record_id,
       hash(v_{kind.id_field}) AS id_hash,
       left({no_secrets}, {int(settings.raw_max_chars)}) AS raw_redacted,
       {_content_hash(kind)} AS content_hash,
       {_typed_columns(kind, settings)}
FROM texts
"""


def _content_hash(kind: RecordKind) -> str:
    """What makes two records with the same id identical: every canonical field."""
    return "hash(" + ", ".join(f"v_{f.name}" for f in kind.fields) + ")"


def _typed_columns(kind: RecordKind, settings: Settings) -> str:
    if kind is ACCESS_KIND:
        return (
            "v_request_id AS request_id, v_event_time AS event_time, v_app_id AS app_id, "
            "v_user_id AS user_id, resource, action, "
            f"{redact_text_sql('v_method', settings)} AS method, "
            f"{redact_path_sql('v_path', settings)} AS path, v_status AS status, "
            f"{redact_text_sql('v_thread_id', settings)} AS thread_id, "
            f"{redact_text_sql('v_ip', settings)} AS ip, "
            f"{redact_text_sql('v_user_agent', settings)} AS user_agent"
        )
    return (
        "v_event_id AS event_id, v_event_time AS event_time, v_user_id AS user_id, "
        "v_app_id AS app_id, v_event_type AS event_type, "
        "CASE WHEN v_event_type = 'grant' THEN v_scopes END AS scopes"
    )
