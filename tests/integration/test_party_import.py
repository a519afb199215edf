"""Bulk import of party members from CSV: real PostgreSQL and RabbitMQ, through the use cases, the CLI and the API.

What must hold: a GB18030 file with Chinese headers and labels registers each
member through party.register (and party.report when a report date is given),
so history, events and facts are those of the API; one bad row in
all_or_nothing mode changes nothing at all, even when the row only fails in the
use case after others went through; valid_rows mode writes the good rows and
reports every bad one by its spreadsheet row number; a caller finds only the
residents of their scope, and learns nothing about the others.
"""
import json

import pytest
from click.testing import CliRunner

from linli.cli import main
from services.registry import party, party_import, residents
from services.registry.identity import check_character
from shared.protect import Vault
from shared import envelope
from shared.db import transaction
from shared.facts import Signer

COMMUNITY, OTHER_COMMUNITY = "310110012001", "310110012002"
CALLER = {"actor": "test:party-import", "scope": "310110012"}
HEADERS = ["序号", "姓名", "公民身份号码", "联系电话", "党员类别", "组织关系所在党组织", "入党日期", "报到日期",
           "服务岗位", "所属支部", "楼组"]
# name, community, born
PEOPLE = [("王建国", COMMUNITY, "19560314"), ("李秀英", COMMUNITY, "19480902"), ("张伟", COMMUNITY, "19700101"),
          ("陈静", COMMUNITY, "19850612"), ("阿卜杜拉·艾力", COMMUNITY, "19750505"), ("赵敏", COMMUNITY, "19700707"),
          ("刘洋", OTHER_COMMUNITY, "19680808"), ("孙丽", COMMUNITY, "19600909"), ("周建华", COMMUNITY, "19620115"),
          ("吴桂兰", COMMUNITY, "19510220"), ("郑志强", COMMUNITY, "19720325"), ("冯秀珍", COMMUNITY, "19580430"),
          ("何海涛", COMMUNITY, "19770518")]


def id_number(i, birth):
    first17 = "310110" + birth + f"{300 + 2 * i:03d}"
    return first17 + check_character(first17)


def csv_bytes(rows, encoding="gb18030", headers=HEADERS):
    lines = [",".join(headers)] + [",".join(str(c) for c in r) for r in rows]
    return ("\r\n".join(lines) + "\r\n").encode(encoding)


@pytest.fixture
def in_tx(config, demo_tree):
    """Run a use case in its own committed transaction, as one RPC would."""
    def run(fn, *args, **kwargs):
        with transaction(config["DATABASE_URL"], "registry", envelope.source_from_config("registry", config),
                         Signer.from_config(config)) as tx:
            return fn(tx, *args, **kwargs)
    return run


@pytest.fixture
def town(in_tx, config):
    """The residents of PEOPLE and the party structure of COMMUNITY: a committee, two branches, a group."""
    vault = Vault.from_config(config)
    people = []
    for i, (name, community, born) in enumerate(PEOPLE):
        number = id_number(i, born)
        row = in_tx(residents.register, vault, {"name": name, "id_number": number, "community_code": community,
                                                "residence_type": "registered"}, CALLER)
        people.append({"id": row["id"], "name": name, "id_number": number, "community_code": community})
    org = {}
    for key, body in [("committee", {"kind": "committee", "name": "长海一村社区党委"}),
                      ("first", {"kind": "branch", "name": "长海一村第一党支部"}),
                      ("second", {"kind": "branch", "name": "长海一村第二党支部"})]:
        org[key] = in_tx(party.create_org, {**body, "community_code": COMMUNITY}, CALLER)["id"]
    org["group"] = in_tx(party.create_org, {"community_code": COMMUNITY, "kind": "group", "name": "12号楼党小组",
                                            "parent_id": org["first"]}, CALLER)["id"]
    return {"people": people, "org": org}


@pytest.fixture
def run_import(in_tx, config):
    def run(data, mode="all_or_nothing", caller=CALLER):
        return in_tx(party_import.import_party_members, Vault.from_config(config), data, mode, caller)
    return run


@pytest.fixture
def counts(sql):
    def take():
        return {t: sql(f"SELECT count(*) AS n FROM registry.{t}")[0]["n"]
                for t in ("party_members", "party_member_history", "outbox", "residents")}
    return take


def row(person, n=1, category="在职党员", org="上海电气集团党委", joined="1996年7月1日", reported="", posts="",
        branch="", group="", name=None, phone=""):
    return [n, person["name"] if name is None else name, person["id_number"], phone, category, org, joined,
            reported, posts, branch, group]


def test_a_gb18030_file_with_chinese_labels_registers_reports_and_places(run_import, town, sql):
    p = town["people"]
    data = csv_bytes([
        row(p[0], 1, reported="2024/3/5", posts="治安巡逻、政策宣传", branch="第一党支部", group="12号楼党小组",
            phone="13916275318"),
        row(p[1], 2, category="退休", org="长海一村社区党委", joined="1980-10-01", branch="长海一村第二党支部"),
        # Spaces and a full-width interpunct in the name still match the register.
        row(p[4], 3, category="流动党员", joined="1999.5.4", reported="20240601", posts="志愿服务 楼组联络",
            name=" 阿卜杜拉・艾力 "),
    ])
    report = run_import(data)
    assert report["encoding"] == "gb18030" and report["errors"] == [], report
    assert (report["rows"], report["accepted"], report["rejected"], report["written"]) == (3, 3, 0, 3)
    assert report["columns"]["id_number"] == "公民身份号码" and report["columns"]["group"] == "楼组"
    assert "phone" not in report["columns"] and set(report["ignored_columns"]) == {"序号", "联系电话"}
    assert report["import_id"]

    members = {m["resident_id"]: m for m in sql("SELECT * FROM registry.party_members")}
    first = members[p[0]["id"]]
    assert (first["category"], first["membership_org"], first["report_status"], first["posts"],
            first["party_org_id"], first["org_kind"]) == (
        "on_the_job", "上海电气集团党委", "reported", ["security_patrol", "policy_outreach"], town["org"]["group"],
        "group")
    assert str(first["reported_on"]) == "2024-03-05" and str(first["joined_party"]) == "1996-07-01"
    second = members[p[1]["id"]]
    assert (second["category"], second["report_status"], second["party_org_id"]) == (
        "retired", "unreported", town["org"]["second"])
    third = members[p[4]["id"]]
    assert (third["category"], third["posts"], third["party_org_id"]) == ("mobile", ["volunteer", "building_liaison"],
                                                                          None)

    history = sql("SELECT resident_id, change, detail FROM registry.party_member_history ORDER BY resident_id, version")
    assert [(h["resident_id"], h["change"]) for h in history] == [
        (p[0]["id"], "registered"), (p[0]["id"], "reported"), (p[1]["id"], "registered"),
        (p[4]["id"], "registered"), (p[4]["id"], "reported")]
    assert {h["detail"]["import_id"] for h in history if h["change"] == "registered"} == {report["import_id"]}
    events = sql("SELECT routing_key, body FROM registry.outbox WHERE routing_key LIKE 'party_member_%%' ORDER BY id")
    assert [e["routing_key"] for e in events] == [
        "party_member_registered", "party_member_reported", "party_member_registered",
        "party_member_registered", "party_member_reported"]
    batches = sql("SELECT body FROM registry.outbox WHERE exchange = 'facts' AND routing_key LIKE '%%party_member%%'")
    party_facts = [f for b in batches for f in b["body"]["facts"]]
    # Members by dimensions add up to three: +1 per registration, -1/+1 per report.
    assert sum(f["delta"] for f in party_facts) == 3
    text = json.dumps([b["body"] for b in batches], ensure_ascii=False)
    assert not any(x["name"] in text or x["id_number"] in text for x in p)


def test_one_bad_row_in_all_or_nothing_changes_nothing(run_import, town, counts):
    p = town["people"]
    before = counts()
    # Row 3 fails while reading; row 5 only in party.register (joined before the 18th birthday),
    # after rows 2 and 4 went through: all of it is undone.
    data = csv_bytes([row(p[0]), row(p[1], category="预备党员"), row(p[2], reported="2024-03-05", posts="议事协商"),
                      row(p[3], joined="2000-01-01")])
    report = run_import(data)
    assert (report["rows"], report["accepted"], report["rejected"], report["written"]) == (4, 2, 2, 0)
    assert report["import_id"] is None
    assert [(e["row"], e["field"]) for e in report["errors"]] == [(3, "category"), (5, "joined_party")]
    assert "18th birthday" in report["errors"][1]["message"]
    assert counts() == before


def test_valid_rows_writes_the_good_rows_and_reports_each_bad_one(run_import, in_tx, town, counts, sql):
    p = town["people"]
    in_tx(party.register, {"resident_id": p[5]["id"], "category": "retired", "membership_org": "长海一村社区党委",
                           "joined_party": "1990-07-01"}, CALLER)
    stranger = {"name": "周强", "id_number": id_number(40, "19650101")}
    before = counts()
    data = csv_bytes([
        row(p[0]),                                                  # 2 good
        row(stranger),                                              # 3 not on the register
        row(p[1], name="李秀兰"),                                    # 4 another name
        row(p[2], category="预备党员"),                              # 5 unknown category
        row(p[3], joined="2024-02-30"),                             # 6 no such day
        row(p[4], branch="第九党支部"),                              # 7 unknown branch
        row(p[0], name=""),                                         # 8 row 2 again
        row(p[5]),                                                  # 9 already a member
        row(p[7], reported="2024-05-01", posts="文明劝导，关爱帮困"),   # 10 good, reported
        row(p[8], reported="1990-01-01", posts="治安巡逻"),           # 11 reported before joining
        row(p[9], posts="跳广场舞", reported="2024-05-01"),           # 12 unknown post
        row(p[10], posts="治安巡逻"),                                 # 13 posts without a report date
        row(p[11], group="12号楼党小组", branch="第二党支部"),         # 14 the group is in another branch
    ])
    report = run_import(data, "valid_rows")
    problems = {(e["row"], e["field"]) for e in report["errors"]}
    assert problems == {(3, "id_number"), (4, "name"), (5, "category"), (6, "joined_party"), (7, "branch"),
                        (8, "id_number"), (9, "id_number"), (11, "reported_on"), (12, "posts"), (13, "reported_on"),
                        (14, "group")}, report["errors"]
    messages = {(e["row"], e["field"]): e["message"] for e in report["errors"]}
    assert "within your scope" in messages[(3, "id_number")]
    assert f"resident {p[1]['id']}" in messages[(4, "name")] and "李秀英" not in messages[(4, "name")]
    assert "在职、退休、流动、学生" in messages[(5, "category")]
    assert "calendar" in messages[(6, "joined_party")]
    assert "长海一村第一党支部" in messages[(7, "branch")]
    assert messages[(8, "id_number")] == "the same person as row 2"
    assert "already a registered party member" in messages[(9, "id_number")]
    assert "跳广场舞" in messages[(12, "posts")]
    assert "长海一村第二党支部" in messages[(14, "group")]
    assert (report["rows"], report["rejected"], report["written"]) == (13, 11, 2)
    after = counts()
    assert after["party_members"] == before["party_members"] + 2
    assert after["party_member_history"] == before["party_member_history"] + 3  # two registrations, one report
    written = sql("SELECT resident_id, report_status, posts FROM registry.party_members "
                  "WHERE resident_id = ANY(%s) ORDER BY resident_id", ([p[0]["id"], p[7]["id"]],))
    assert [(w["report_status"], w["posts"]) for w in written] == [
        ("unreported", []), ("reported", ["civility", "care_visits"])]
    # The same file again writes nobody twice: the two are members now.
    again = run_import(data, "valid_rows")
    assert again["written"] == 0 and {(2, "id_number"), (10, "id_number")} <= {(e["row"], e["field"])
                                                                               for e in again["errors"]}
    assert counts() == after


def test_a_caller_finds_only_residents_of_their_scope(run_import, town, counts):
    p = town["people"]
    other = {"actor": "test:other", "scope": OTHER_COMMUNITY}
    unknown = {"name": "周强", "id_number": id_number(40, "19650101")}
    report = run_import(csv_bytes([row(p[0]), row(p[6]), row(unknown)]), "valid_rows", caller=other)
    assert report["written"] == 1
    assert [(e["row"], e["field"]) for e in report["errors"]] == [(2, "id_number"), (4, "id_number")]
    # Someone of another community reads exactly as someone unknown.
    assert report["errors"][0]["message"] == report["errors"][1]["message"]
    assert counts()["party_members"] == 1


def test_unreadable_files_and_modes_are_refused_whole(run_import, town, counts):
    before = counts()
    with pytest.raises(Exception) as err:
        run_import("姓名,党员类别\n张三,在职\n".encode())
    assert "公民身份号码" in str(err.value)
    with pytest.raises(Exception) as err:
        run_import(csv_bytes([row(town["people"][0])]), "some_rows")
    assert "mode" in err.value.fields
    assert counts() == before


def test_import_over_the_api(api, sql, make_token):
    ids = []
    for i, (name, community, born) in enumerate(PEOPLE[:3]):
        resp = api.post("/api/v1/residents", json={"name": name, "id_number": id_number(i, born),
                                                   "community_code": community, "residence_type": "registered"})
        assert resp.status_code == 201, resp.text
        ids.append(resp.json()["id"])
    api.post("/api/v1/party-orgs", json={"community_code": COMMUNITY, "kind": "committee", "name": "长海一村社区党委"})
    api.post("/api/v1/party-orgs", json={"community_code": COMMUNITY, "kind": "branch", "name": "第一党支部"})
    people = [{"name": name, "id_number": id_number(i, born)} for i, (name, _, born) in enumerate(PEOPLE[:3])]
    data = csv_bytes([row(x, i, branch="第一党支部", reported="2024-03-05", posts="治安巡逻")
                      for i, x in enumerate(people, 1)])
    resp = api.post("/api/v1/imports/party-members", data=data, headers={"Content-Type": "text/csv"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["written"] == 3 and resp.json()["encoding"] == "gb18030"
    listed = api.get("/api/v1/party-members").json()["items"]
    assert sorted(m["resident_id"] for m in listed) == sorted(ids)
    assert {(m["report_status"], m["party_org"]["name"]) for m in listed} == {("reported", "第一党支部")}
    again = api.post("/api/v1/imports/party-members", params={"mode": "valid_rows"}, data=data,
                     headers={"Content-Type": "text/csv"})
    assert again.status_code == 422 and again.json()["rejected"] == 3 and again.json()["written"] == 0
    analyst = api.as_(make_token("district_analyst", prefix="310110"))
    assert analyst.post("/api/v1/imports/party-members", data=data).status_code == 403
    bad_mode = api.post("/api/v1/imports/party-members", params={"mode": "most"}, data=data,
                        headers={"Content-Type": "text/csv"})
    assert bad_mode.status_code == 422 and "mode" in bad_mode.json()["errors"]
    assert sql("SELECT count(*) AS n FROM registry.party_members")[0]["n"] == 3
    spec = api.get("/api/v1/openapi.json").json()
    assert spec["paths"]["/api/v1/imports/party-members"]["post"]["responses"]["200"]["content"][
        "application/json"]["schema"] == {"$ref": "#/components/schemas/ImportReport"}


def test_import_party_members_from_the_cli(town, config, monkeypatch, tmp_path, sql):
    for key in ("LEVEL", "NODE_CODE", "AMQP_URI", "DATABASE_URL", "PSEUDONYM_SECRET", "DATA_ENCRYPTION_KEY",
                "SIGNING_KEY", "HANDOVER_SECRET", "RABBIT_MANAGEMENT_URL"):
        monkeypatch.setenv(key, str(config[key]))
    monkeypatch.delenv("LINLI_CONFIG", raising=False)
    p = town["people"]
    bad = tmp_path / "有错.csv"
    bad.write_bytes(csv_bytes([row(p[0]), row(p[1], category="积极分子")]))
    refused = CliRunner().invoke(main, ["import", "party-members", str(bad)], catch_exceptions=False)
    assert refused.exit_code == 1
    assert "row       3  category" in refused.output and "nothing was registered" in refused.output
    assert sql("SELECT count(*) AS n FROM registry.party_members")[0]["n"] == 0

    good = tmp_path / "党员.csv"
    good.write_bytes(csv_bytes([row(p[0], branch="第一党支部"), row(p[1], reported="2024-03-05", posts="环境整治")]))
    report = tmp_path / "report.json"
    done = CliRunner().invoke(main, ["import", "party-members", str(good), "--actor", "组织委员",
                                     "--report", str(report)], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    assert "2 row(s) read (gb18030): 2 valid, 0 rejected, 2 registered" in done.output
    assert json.loads(report.read_text(encoding="utf-8"))["written"] == 2
    actors = sql("SELECT DISTINCT actor FROM registry.party_member_history")
    assert [a["actor"] for a in actors] == ["cli:组织委员"]
