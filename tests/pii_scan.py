"""Personal data where it must not be: a scan of every text and JSON column of a database.

Personal data stays at the street (DESIGN §5); a district or city database should hold none. `scan`
reads every column of type text, varchar, char, json or jsonb (and arrays of them) of every base
table in every non-system schema, found through information_schema, and reports per column and
kind what it found:

- an ID number: 17 digits and a digit or X whose check character (GB 11643) is right;
- a mainland mobile number: 11 digits starting 1[3-9], `+86` before it or not;
- a resident's name, pseudonym or handover key (`residents_of` reads them from a street).

A number counts only on its own: a run of digits glued to more digits or to ASCII letters is part
of something else (a node code of 6 to 15 digits, a hex fact id, a base64 signature, a timestamp),
and counting those would drown a real finding in false ones. A JSON value is read as the parsed
data written back without escapes, so a name stored as \\uXXXX escapes in a `json` column, or a
phone stored as a JSON number, is still found.

A hit names the column and the kind, and shows a short excerpt with the match itself masked:
the report of a leak must not repeat it.
"""
import json
import re
from dataclasses import dataclass

import psycopg
from psycopg import sql

from services.registry.identity import check_character

ID_NUMBER, PHONE, NAME, PSEUDONYM, HANDOVER_KEY = "ID number", "phone", "resident's name", "pseudonym", "handover key"

_TYPES = ("text", "character varying", "character", "json", "jsonb")
_ARRAYS = ("_text", "_varchar", "_bpchar", "_json", "_jsonb")
_COLUMNS = """
    SELECT c.table_schema, c.table_name, c.column_name
    FROM information_schema.columns c
    JOIN information_schema.tables t ON (t.table_schema, t.table_name) = (c.table_schema, c.table_name)
    WHERE t.table_type = 'BASE TABLE'
      AND c.table_schema <> 'information_schema' AND c.table_schema NOT LIKE 'pg\\_%%'
      AND (c.data_type = ANY(%s) OR (c.data_type = 'ARRAY' AND c.udt_name = ANY(%s)))
    ORDER BY 1, 2, 3"""

_ALONE_BEFORE, _ALONE_AFTER = r"(?<![0-9A-Za-z])", r"(?![0-9A-Za-z])"
_ID = re.compile(_ALONE_BEFORE + r"([0-9]{17})([0-9Xx])" + _ALONE_AFTER)
_PHONE = re.compile(_ALONE_BEFORE + r"(?:\+86[ -]?)?1[3-9][0-9]{9}" + _ALONE_AFTER)
_HEX_RUN = re.compile(r"[0-9a-f]{32,}")
_LONG_DIGITS = re.compile(r"[0-9]{7,}")


@dataclass(frozen=True)
class Residents:
    """What names a street's residents: names (2+ characters), pseudonyms and handover keys (hex)."""
    names: frozenset = frozenset()
    pseudonyms: frozenset = frozenset()
    handover_keys: frozenset = frozenset()

    def __or__(self, other):
        return Residents(self.names | other.names, self.pseudonyms | other.pseudonyms,
                         self.handover_keys | other.handover_keys)


@dataclass
class Hit:
    column: str                  # schema.table.column
    kind: str
    values: int = 0              # how many values of the column hold it
    excerpt: str = ""            # the first one's, masked

    def __str__(self):
        return f"{self.column}: {self.kind} in {self.values} value(s), e.g. {self.excerpt!r}"


def residents_of(dsn):
    """The residents of a street's register, as `scan` looks for them."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT name, pseudonym, encode(handover_hash, 'hex') FROM registry.residents").fetchall()
    return Residents(frozenset(n for n, _, _ in rows if len(n) >= 2), frozenset(p.lower() for _, p, _ in rows if p),
                     frozenset(k for _, _, k in rows if k))


def scan(dsn, residents=Residents()):
    """Every place in the database holding personal data: a list of Hit, [] if none."""
    finder = _Finder(residents)
    hits = {}
    with psycopg.connect(dsn) as conn:
        columns = conn.execute(_COLUMNS, (list(_TYPES), list(_ARRAYS))).fetchall()
        for schema, table, column in columns:
            query = sql.SQL("SELECT {c} FROM {s}.{t} WHERE {c} IS NOT NULL").format(
                c=sql.Identifier(column), s=sql.Identifier(schema), t=sql.Identifier(table))
            with conn.cursor(name="pii_scan") as cur:
                cur.itersize = 2000
                cur.execute(query)
                for value, in cur:
                    for kind, excerpt in finder.find(_as_text(value)):
                        hit = hits.setdefault((schema, table, column, kind), Hit(f"{schema}.{table}.{column}", kind))
                        hit.values += 1
                        hit.excerpt = hit.excerpt or excerpt
    return list(hits.values())


def _as_text(value):
    if isinstance(value, str):
        return value
    # Parsed JSON or an array: written back without \u escapes, so names read as written.
    return json.dumps(value, ensure_ascii=False, default=str)


class _Finder:
    def __init__(self, residents):
        self.names = residents.names
        self.name_lengths = sorted({len(n) for n in self.names}, reverse=True)
        firsts = "".join(sorted({n[0] for n in self.names}))
        self.name_start = re.compile("[" + re.escape(firsts) + "]") if firsts else None
        self.secrets = {**{p: PSEUDONYM for p in residents.pseudonyms},
                        **{k: HANDOVER_KEY for k in residents.handover_keys}}
        self.secret_lengths = sorted({len(s) for s in self.secrets}, reverse=True)

    def find(self, text):
        """(kind, masked excerpt) once per kind the text holds."""
        found = {}
        for m in _ID.finditer(text):
            if check_character(m.group(1)) == m.group(2).upper():
                found.setdefault(ID_NUMBER, (m.start(), m.end()))
        m = _PHONE.search(text)
        if m:
            found[PHONE] = (m.start(), m.end())
        if self.name_start is not None:
            span = self._name(text)
            if span:
                found[NAME] = span
        if self.secrets:
            lowered = text.lower()
            for run in _HEX_RUN.finditer(lowered):
                for kind, span in self._secrets(lowered, run.start(), run.end()):
                    found.setdefault(kind, span)
        return [(kind, _excerpt(text, start, end, kind)) for kind, (start, end) in found.items()]

    def _name(self, text):
        for m in self.name_start.finditer(text):
            i = m.start()
            for k in self.name_lengths:
                if text[i:i + k] in self.names:
                    return i, i + k
        return None

    def _secrets(self, text, start, end):
        for i in range(start, end):
            for k in self.secret_lengths:
                if i + k <= end and text[i:i + k] in self.secrets:
                    yield self.secrets[text[i:i + k]], (i, i + k)


def _excerpt(text, start, end, kind, around=10):
    """The match replaced by its kind, with a little context whose longer digit runs are masked too."""
    def mask(s):
        return _LONG_DIGITS.sub(lambda d: "#" * len(d.group()), s)
    return mask(text[max(0, start - around):start]) + f"<{kind}>" + mask(text[end:end + around])
