"""Bulk import of residents from CSV: real PostgreSQL, real RabbitMQ, through the CLI's code path and the API.

A bad row in all_or_nothing mode must change nothing at all; valid_rows mode
writes the good rows and reports the rest by spreadsheet row number; every
written resident is sealed like one registered over the API, and the import's
events carry exactly the payload a single registration's event carries.
"""
import json
from datetime import date

import pytest

from linli.demo import people
from services.registry import importer
from shared.protect import Vault
from shared import envelope
from shared.db import transaction
from shared.facts import Signer, verify
from shared import clock

COMMUNITIES = [{"code": "310110012001", "name": "长海一村居委会", "estate": "长海一村", "grids": ["310110012001001"]},
               {"code": "310110012002", "name": "长海二村居委会", "estate": "长海二村", "grids": []}]
CALLER = {"actor": "test:import", "scope": "310110012"}


def csv_bytes(persons, encoding="utf-8-sig", extra_rows=()):
    lines = [",".join(people.CSV_HEADERS)] + [",".join(people.to_csv_row(p)) for p in persons] + list(extra_rows)
    return ("\r\n".join(lines) + "\r\n").encode(encoding)


@pytest.fixture
def run_import(config, demo_tree):
    def run(data, mode="all_or_nothing", caller=CALLER):
        with transaction(config["DATABASE_URL"], "registry", envelope.source_from_config("registry", config),
                         Signer.from_config(config)) as tx:
            return importer.import_residents(tx, Vault.from_config(config), data, mode, caller)
    return run


@pytest.fixture
def counts(sql):
    def take():
        return {t: sql(f"SELECT count(*) AS n FROM registry.{t}")[0]["n"]
                for t in ("residents", "households", "rooms", "buildings", "resident_history", "outbox")}
    return take


def test_a_clean_file_registers_everyone_with_events_and_signed_facts(run_import, sql, config):
    persons = list(people.generate(300, COMMUNITIES, seed=7))
    report = run_import(csv_bytes(persons, "gb18030"))
    assert report["encoding"] == "gb18030"
    assert (report["rows"], report["accepted"], report["rejected"], report["written"]) == (300, 300, 0, 300)
    assert sql("SELECT count(*) AS n FROM registry.residents")[0]["n"] == 300
    assert sql("SELECT count(*) AS n FROM registry.resident_history WHERE change = 'registered'")[0]["n"] == 300
    households = {p["household_no"] for p in persons}
    assert sql("SELECT count(*) AS n FROM registry.households")[0]["n"] == len(households)
    heads = sql("SELECT count(*) AS n FROM registry.households WHERE head_resident_id IS NOT NULL")[0]["n"]
    assert heads == sum(1 for p in persons if p["relation"] == "self")
    events = sql("SELECT body FROM registry.outbox WHERE routing_key = 'residents_imported' ORDER BY id")
    listed = [r for e in events for r in e["body"]["payload"]["residents"]]
    assert len(listed) == 300 and len({r["id"] for r in listed}) == 300
    for e in events:
        envelope.load(e["body"])  # a valid envelope like any other event
    batches = sql("SELECT body FROM registry.outbox WHERE exchange = 'facts'")
    # Beside the demo hierarchy's node descriptions, one fact per resident.
    fact_list = [f for b in batches for f in b["body"]["facts"] if f["type"] != "node_changed"]
    assert len(fact_list) == 300 and all(verify(b["body"], Signer.from_config(config).public_key) for b in batches)
    dump = json.dumps([b["body"] for b in batches], ensure_ascii=False)
    assert not any(p["id_number"] in dump or p["name"] in dump for p in persons)


def test_import_events_carry_the_same_payload_as_a_registration(run_import, api, sql):
    person = next(people.generate(1, COMMUNITIES, seed=3))
    run_import(csv_bytes([person]))
    imported = sql("SELECT body FROM registry.outbox WHERE routing_key = 'residents_imported'")[0]["body"]
    one = imported["payload"]["residents"][0]
    resident_id = one["id"]
    api.post(f"/api/v1/residents/{resident_id}/departure", json={"effective": clock.today().isoformat()})
    body = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in person.items() if v is not None}
    assert api.post("/api/v1/residents", json=body).status_code == 201
    registered = sql("SELECT body FROM registry.outbox WHERE routing_key = 'resident_registered'")[0]["body"]
    payload = registered["payload"]
    assert set(payload) == set(one)
    same = {k for k in payload if k not in ("id", "household_id", "version")}
    assert {k: payload[k] for k in same} == {k: one[k] for k in same}


def test_one_bad_row_in_all_or_nothing_changes_nothing(run_import, counts):
    persons = list(people.generate(50, COMMUNITIES, seed=11))
    before = counts()
    bad = people.to_csv_row(next(people.generate(1, COMMUNITIES, seed=99)))
    bad[1] = bad[1][:-1] + ("0" if bad[1][-1] != "0" else "1")  # wrong check character
    report = run_import(csv_bytes(persons, extra_rows=[",".join(bad)]))
    assert report["written"] == 0 and report["rejected"] == 1
    assert report["errors"] == [{"row": 52, "field": "id_number", "message": report["errors"][0]["message"]}]
    assert "should be" in report["errors"][0]["message"]
    assert counts() == before


def test_valid_rows_mode_writes_the_good_rows_and_reports_each_bad_one(run_import, counts, sql):
    persons = list(people.generate(20, COMMUNITIES, seed=5))
    rows = [people.to_csv_row(p) for p in persons]
    rows[3][4] = "12345"            # phone
    rows[7][5] = "310110012099"     # unknown community
    rows[9][12] = "游客"             # residence type
    rows[12][1] = rows[2][1]        # same person as row 4
    rows[15][13] = "独居老人、贵宾"    # unknown tag
    data = ("\r\n".join([",".join(people.CSV_HEADERS)] + [",".join(r) for r in rows]) + "\r\n").encode("utf-8")
    report = run_import(data, "valid_rows")
    problems = {(e["row"], e["field"]) for e in report["errors"]}
    assert {(5, "phone"), (9, "community_code"), (11, "residence_type"), (14, "id_number"), (17, "tags")} <= problems
    assert report["rejected"] == len({r for r, _ in problems})
    assert report["written"] == sql("SELECT count(*) AS n FROM registry.residents")[0]["n"] == 20 - report["rejected"]
    # A second import of the same file registers no one twice.
    again = run_import(data, "valid_rows")
    assert again["written"] == 0
    assert sql("SELECT count(*) AS n FROM registry.residents")[0]["n"] == report["written"]


def test_unreadable_files_and_scopes(run_import, counts):
    before = counts()
    with pytest.raises(Exception) as err:
        run_import("姓名,电话\n张三,13800000000\n".encode())
    assert "公民身份号码" in str(err.value)
    assert counts() == before
    persons = list(people.generate(5, COMMUNITIES, seed=1))
    worker = {"actor": "test:worker", "scope": "310110012002"}
    report = run_import(csv_bytes(persons), "valid_rows", caller=worker)
    outside = [e for e in report["errors"] if e["field"] == "community_code"]
    assert len(outside) == sum(1 for p in persons if p["community_code"] != "310110012002")
    assert counts()["residents"] == report["written"]


def test_import_over_the_api(api, sql, make_token):
    persons = list(people.generate(30, COMMUNITIES, seed=21))
    resp = api.post("/api/v1/imports/residents", data=csv_bytes(persons), headers={"Content-Type": "text/csv"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["written"] == 30
    again = api.post("/api/v1/imports/residents", data=csv_bytes(persons), headers={"Content-Type": "text/csv"})
    assert again.status_code == 422 and again.json()["rejected"] == 30 and again.json()["written"] == 0
    analyst = api.as_(make_token("district_analyst", prefix="310110"))
    assert analyst.post("/api/v1/imports/residents", data=csv_bytes(persons)).status_code == 403
    assert sql("SELECT count(*) AS n FROM registry.outbox WHERE routing_key = 'residents_imported'")[0]["n"] == 1


def test_a_household_lives_at_one_address_in_the_import_as_over_the_api(run_import, sql):
    persons = list(people.generate(2, COMMUNITIES, seed=31))
    first, second = persons[0], {**persons[1], "community_code": persons[0]["community_code"], "grid_code": None,
                                 "household_no": persons[0]["household_no"], "relation": "spouse"}
    first = {**first, "relation": "self"}
    moved = {**second, "room": "999"}  # same household, another room
    report = run_import(csv_bytes([first, moved]), "valid_rows")
    assert [(e["row"], e["field"]) for e in report["errors"]] == [(3, "room")]
    again = run_import(csv_bytes([{**second, "room": "998"}]), "valid_rows")
    assert [(e["row"], e["field"]) for e in again["errors"]] == [(2, "room")]
    assert sql("SELECT count(*) AS n FROM registry.residents")[0]["n"] == 1
