"""The personal-data scan (tests/pii_scan.py) finds what is planted, and nothing in what is not personal.

Real PostgreSQL: a scratch schema in the test database holds one of each kind of personal data, each
in a column of another type (text, text[], json, jsonb, varchar), beside the identifiers a district
does hold (node codes, hex fact ids, ISO timestamps, UUIDs, a mistyped ID number). The whole database
is scanned, so the schema is found as any new one would be, and the shipped rows of the other
schemas are read for false hits too.
"""
import os
import uuid

import psycopg
import pytest
from psycopg.types.json import Json, Jsonb

from services.registry.identity import check_character
from tests.pii_scan import HANDOVER_KEY, ID_NUMBER, NAME, PHONE, PSEUDONYM, Residents, scan

FIRST17 = "11010519491231002"
ID = FIRST17 + check_character(FIRST17)
WRONG_CHECK = FIRST17 + "10X98765432"[("10X98765432".index(check_character(FIRST17)) + 1) % 11]
PHONE_NO, NUMBER_PHONE = "13912345678", 18612345678
NAME_ = "欧阳明月"
PSEUDO, KEY = os.urandom(16).hex(), os.urandom(32).hex()


@pytest.fixture
def probe(clean_db):
    with psycopg.connect(clean_db, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS pii_probe CASCADE")
        conn.execute("CREATE SCHEMA pii_probe")
        conn.execute("CREATE TABLE pii_probe.planted (id_text text, phone_arr text[], phone_json jsonb, "
                     "name_json json, pseudonym_jsonb jsonb, key_varchar varchar(100), code_char char(15), "
                     "clean_text text, clean_json jsonb)")
        yield conn
        conn.execute("DROP SCHEMA pii_probe CASCADE")


def test_each_kind_planted_is_found_and_identifiers_are_not(probe, clean_db):
    # Not personal: what a district holds, and numbers that only look like ID numbers or phones.
    fact_ids = ["ab13912345678cdef0123456789abcde", "f" + FIRST17 + check_character(FIRST17) + "a0b1c2d3e4f5a"]
    clean = " ".join(["3101", "310110", "310110012", "310110012001", "310110012001001", *fact_ids,
                      "2026-11-20T10:00:00.123456+08:00", "20261120100000", "1763600000000",
                      "550e8400-e29b-41d4-a716-139123456789", str(uuid.uuid4()), WRONG_CHECK,
                      "9" + ID, PHONE_NO + "0", "8" + PHONE_NO, "居委会二楼会议室"])
    probe.execute("INSERT INTO pii_probe.planted VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                  (f"身份证{ID}，已核实", ["a", f"联系电话{PHONE_NO}请回电"], Jsonb({"tel": NUMBER_PHONE}),
                   Json({"raised_by": f"居民{NAME_}反映"}), Jsonb({"facts": [{"subject": PSEUDO}]}),
                   f"key:{KEY.upper()}", "310110012001001", clean,
                   Jsonb({"fact_id": fact_ids[0], "node": "310110012001", "seq": 13912345678123})))
    hits = scan(clean_db, Residents(frozenset({NAME_}), frozenset({PSEUDO}), frozenset({KEY})))
    assert {(h.column, h.kind) for h in hits} == {
        ("pii_probe.planted.id_text", ID_NUMBER), ("pii_probe.planted.phone_arr", PHONE),
        ("pii_probe.planted.phone_json", PHONE), ("pii_probe.planted.name_json", NAME),
        ("pii_probe.planted.pseudonym_jsonb", PSEUDONYM), ("pii_probe.planted.key_varchar", HANDOVER_KEY)}, hits
    # The report says where and what, never the value.
    report = "\n".join(map(str, hits))
    for value in (ID, PHONE_NO, str(NUMBER_PHONE), NAME_, PSEUDO, KEY, KEY.upper()):
        assert value not in report
    assert "身份证<ID number>" in report


def test_nothing_is_found_where_nothing_personal_is(probe, clean_db):
    probe.execute("INSERT INTO pii_probe.planted (clean_text, clean_json) VALUES (%s, %s)",
                  ("欧阳", Jsonb({"reason": "加装电梯需街道协调资金和审批", "count": 42})))
    assert scan(clean_db, Residents(frozenset({NAME_}), frozenset({PSEUDO}), frozenset({KEY}))) == []
