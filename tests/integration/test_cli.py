"""The `linli` command against the test database and this test's vhost."""
import pytest
from click.testing import CliRunner

from linli.cli import main
from services.gateway import store as token_store
from shared.db import connect


@pytest.fixture
def cli(config, monkeypatch, tmp_path):
    for key in ("LEVEL", "NODE_CODE", "AMQP_URI", "DATABASE_URL", "PSEUDONYM_SECRET", "DATA_ENCRYPTION_KEY",
                "SIGNING_KEY", "HANDOVER_SECRET", "RABBIT_MANAGEMENT_URL"):
        monkeypatch.setenv(key, str(config[key]))
    monkeypatch.delenv("LINLI_CONFIG", raising=False)

    def run(*args):
        result = CliRunner().invoke(main, list(args), catch_exceptions=False)
        return result
    return run


def test_demo_load_is_idempotent_and_emits_through_the_outbox(cli, sql):
    first = cli("demo", "load")
    assert first.exit_code == 0 and "11 node(s) added" in first.output
    assert "600 resident(s) registered" in first.output  # 120 in each of the street's 5 communities
    assert "56 party members, 10 organizations, 10 workers added" in first.output
    again = cli("demo", "load").output
    assert again.startswith("demo: 0 node(s) added") and "residents already registered" in again
    assert "party, organisations and workers already loaded" in again
    rate = sql("SELECT count(*) FILTER (WHERE report_status = 'reported') AS reported, count(*) AS n "
               "FROM registry.party_members")[0]
    assert 0 < rate["reported"] < rate["n"]
    assert sql("SELECT count(*) AS n FROM registry.nodes")[0]["n"] == 11
    assert sql("SELECT count(*) AS n FROM registry.residents")[0]["n"] == 600
    assert sql("SELECT count(*) AS n FROM registry.outbox WHERE routing_key = 'node_created'")[0]["n"] == 11
    # Every event and fact batch waits in the outbox (no relay runs here).
    unsent = sql("SELECT count(*) AS n FROM registry.outbox WHERE sent_at IS NULL")[0]["n"]
    status = cli("outbox", "status")
    assert status.exit_code == 0
    assert [line.split()[:2] for line in status.output.splitlines() if line.startswith("registry")] == [
        ["registry", str(unsent)]]


def test_token_create_prints_a_token_stored_only_as_a_hash(cli, config):
    result = cli("token", "create", "--name", "民星一村 社工", "--role", "community_worker", "--prefix", "310110012003")
    token = result.output.strip()
    assert result.exit_code == 0 and token.startswith("lnl_")
    with connect(config["DATABASE_URL"]) as conn:
        conn.execute("SET search_path TO gateway")
        principal = token_store.principal_for(conn, token)
        stored = conn.execute("SELECT token_hash FROM api_tokens").fetchone()["token_hash"]
    assert principal.role == "community_worker" and principal.node_prefix == "310110012003"
    assert token not in stored
    refused = CliRunner().invoke(main, ["token", "create", "--name", "x", "--role", "street_admin",
                                        "--prefix", "310110013"])
    assert refused.exit_code != 0 and "must lie inside this instance" in refused.output


def test_topology_apply_declares_the_exchanges(cli, rabbit_manager, config):
    result = cli("topology", "apply")
    assert result.exit_code == 0, result.output
    vhost = config["AMQP_URI"].rsplit("/", 1)[1]
    names = {e["name"] for e in rabbit_manager.get_exchanges(vhost)}
    assert {"facts", "directives", "linli.dlx", "registry.events"} <= names


def test_a_bad_config_is_reported_key_by_key(cli, monkeypatch):
    monkeypatch.setenv("NODE_CODE", "3101100")
    result = CliRunner().invoke(main, ["check-config"])
    assert result.exit_code != 0
    assert "NODE_CODE: a street code has 9 digits, got 7" in result.output


def test_demo_load_at_a_district_loads_its_tree_and_no_personal_records(cli, sql, monkeypatch):
    monkeypatch.setenv("LEVEL", "district")
    monkeypatch.setenv("NODE_CODE", "310110")
    result = cli("demo", "load")
    assert result.exit_code == 0, result.output
    assert "a district holds no residents" in result.output
    codes = {r["code"] for r in sql("SELECT code FROM registry.nodes")}
    assert {"3101", "310110", "310110012", "310110013", "310110013001"} <= codes
    for table in ("residents", "party_members", "workers"):
        assert sql(f"SELECT count(*) AS n FROM registry.{table}")[0]["n"] == 0, table


def test_import_residents_reports_rows_and_refuses_a_bad_file_whole(cli, sql, tmp_path, demo_tree):
    from linli.demo import people
    communities = [{"code": "310110012003", "name": "民星一村居委会", "estate": "民星一村", "grids": []}]
    persons = list(people.generate(40, communities, seed=4))
    good = tmp_path / "居民.csv"
    people.write_csv(str(good), persons, encoding="gb18030")
    bad_rows = [people.to_csv_row(p) for p in persons]
    bad_rows[9][3] = "1990-02-30"
    bad = tmp_path / "有错.csv"
    bad.write_text("\n".join([",".join(people.CSV_HEADERS)] + [",".join(r) for r in bad_rows]) + "\n", encoding="utf-8")

    refused = cli("import", "residents", str(bad))
    assert refused.exit_code == 1
    assert "row      11  birth_date" in refused.output and "nothing was registered" in refused.output
    assert sql("SELECT count(*) AS n FROM registry.residents")[0]["n"] == 0

    report = tmp_path / "report.json"
    done = cli("import", "residents", str(good), "--report", str(report))
    assert done.exit_code == 0, done.output
    assert "40 row(s) read (gb18030): 40 valid, 0 rejected, 40 registered" in done.output
    assert sql("SELECT count(*) AS n FROM registry.residents")[0]["n"] == 40
    assert '"written": 40' in report.read_text(encoding="utf-8")


def test_a_token_is_for_someone_on_the_register_inside_its_prefix(cli, config, demo_tree, sql):
    from services.registry import residents
    from services.registry.identity import check_character
    from shared import envelope
    from shared.db import transaction
    from shared.protect import Vault
    first17 = "31011019580312041"
    from shared.facts import Signer
    with transaction(config["DATABASE_URL"], "registry", envelope.source_from_config("registry", config),
                     Signer.from_config(config)) as tx:
        rid = residents.register(tx, Vault.from_config(config), {
            "name": "周桂兰", "id_number": first17 + check_character(first17), "community_code": "310110012001",
            "residence_type": "registered"},
            {"actor": "cli", "scope": config["NODE_CODE"], "role": "street_admin"})["id"]
    for args, refusal in [
            (["--resident", "999999", "--prefix", "310110012001"], "no resident 999999 on this instance's register"),
            (["--resident", str(rid), "--prefix", "310110012002"], f"resident {rid} lives in community 310110012001"),
            (["--role", "organization_leader", "--organization", "999999", "--prefix", "310110012001"],
             "no organisation 999999")]:
        role = [] if "--role" in args else ["--role", "resident"]
        refused = CliRunner().invoke(main, ["token", "create", "--name", "x", *role, *args])
        assert refused.exit_code != 0 and refusal in refused.output, refused.output
    assert sql("SELECT count(*) AS n FROM gateway.api_tokens")[0]["n"] == 0
    made = cli("token", "create", "--name", "周桂兰", "--role", "resident", "--resident", str(rid),
               "--prefix", "310110012001")
    assert made.exit_code == 0 and made.output.strip().startswith("lnl_"), made.output


def test_token_list_shows_an_expired_token_as_expired(cli, sql):
    for name in ("还有效", "已过期", "已吊销"):
        assert cli("token", "create", "--name", name, "--role", "street_admin", "--expires-days", "1").exit_code == 0
    sql("UPDATE gateway.api_tokens SET expires_at = now() - interval '1 second' WHERE name = '已过期'")
    sql("UPDATE gateway.api_tokens SET revoked_at = now() WHERE name = '已吊销'")
    states = {line.split()[-1]: line.split()[-2] for line in cli("token", "list").output.splitlines()}
    assert states == {"还有效": "active", "已过期": "expired", "已吊销": "revoked"}


def test_account_commands_make_and_manage_the_first_admin(cli, sql):
    from services.gateway import accounts
    made = cli("account", "create", "--username", "zhangwei", "--name", "张伟", "--role", "street_admin")
    password = made.output.strip()
    assert made.exit_code == 0 and not accounts.password_problems(password)
    row = sql("SELECT password_hash, must_change_password, node_prefix, role FROM gateway.staff_accounts")[0]
    assert accounts.verify_password(row["password_hash"], password) and password not in row["password_hash"]
    assert row["must_change_password"] is True and row["node_prefix"] == "310110012" and row["role"] == "street_admin"
    taken = CliRunner().invoke(main, ["account", "create", "--username", "zhangwei", "--name", "x", "--role",
                                      "street_admin"])
    assert taken.exit_code != 0 and "taken" in taken.output
    for args, says in [(["--prefix", "310110013"], "inside your own scope"), (["--role", "resident"], "resident"),
                       (["--username", "X Y"], "username")]:
        base = {"--username": "liming", "--name": "李明", "--role": "community_worker"}
        flat = [a for k, v in base.items() if k not in args for a in (k, v)]
        refused = CliRunner().invoke(main, ["account", "create", *flat, *args])
        assert refused.exit_code != 0 and says in refused.output, refused.output
    again = cli("account", "create", "--username", "zhangwei", "--name", "张伟", "--role", "street_admin",
                "--reset-if-exists", "--no-forced-change")
    assert again.exit_code == 0 and again.output.strip() != password
    assert sql("SELECT must_change_password FROM gateway.staff_accounts")[0]["must_change_password"] is False
    reset = cli("account", "reset-password", "zhangwei").output.strip()
    assert accounts.verify_password(sql("SELECT password_hash FROM gateway.staff_accounts")[0]["password_hash"], reset)
    assert "zhangwei" in cli("account", "list").output
    assert cli("account", "disable", "zhangwei").exit_code == 0
    assert "disabled" in cli("account", "list").output
    assert cli("account", "enable", "zhangwei").exit_code == 0
    assert "active" in cli("account", "list").output
    # A lock that has run out is no lock.
    sql("UPDATE gateway.staff_accounts SET locked_until = now() - interval '1 minute'")
    assert "active" in cli("account", "list").output
    events = [r["event"] for r in sql("SELECT event FROM gateway.sign_in_events ORDER BY event_id")]
    assert events == ["created", "password_reset", "password_reset", "disabled", "enabled"]


def test_openapi_prints_the_document_the_gateway_serves(cli):
    import json
    from services.gateway import openapi
    from services.gateway.service import VERSION
    printed = cli("openapi")
    assert printed.exit_code == 0 and json.loads(printed.output) == json.loads(json.dumps(openapi.build(VERSION)))
