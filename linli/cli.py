"""`linli`: run a service, migrate, declare the broker topology, manage tokens, load demo data."""
import shared.green  # noqa: F401  (must precede psycopg)

import json
import os
import pathlib
import sys
from datetime import datetime, timedelta, timezone

import click

from linli import SERVICES, all_service_classes, service_class
from services.gateway.accounts import ACCOUNT_ROLES
from services.gateway.auth import ROLES
from shared import config as config_mod
from shared import envelope, logs


def load_config(ctx):
    try:
        return config_mod.load(ctx.obj.get("config_path"))
    except config_mod.ConfigError as exc:
        raise click.ClickException(str(exc))


@click.group()
@click.option("--config", "config_path", envvar="LINLI_CONFIG", type=click.Path(dir_okay=False),
              help="YAML config; environment variables override it.")
@click.pass_context
def main(ctx, config_path):
    """Linli (邻里) community governance: operate one instance."""
    ctx.ensure_object(dict)["config_path"] = config_path


@main.command("check-config")
@click.option("--tree", "procfile", type=click.Path(exists=True, dir_okay=False),
              help="Count every `linli run` process of this Procfile (the local tree: `--tree Procfile`) against "
                   "the server, not only this instance's.")
@click.pass_context
def check_config(ctx, procfile):
    """Validate the configuration, print it with secrets masked, and check the connection budget.

    The budget (shared/budget.py) is what the processes may hold at most; it must leave 30% of the
    server's max_connections free. A warning goes to stderr when it does not; the exit status stays 0,
    because the configuration itself is valid.
    """
    cfg = load_config(ctx)
    secret = {"PSEUDONYM_SECRET", "DATA_ENCRYPTION_KEY", "SIGNING_KEY", "HANDOVER_SECRET"}
    for key in sorted(config_mod.ConfigSchema().fields):
        click.echo(f"{key}={'***' if key in secret else cfg.get(key)}")
    _check_budget(cfg, procfile, ctx.obj.get("config_path"))


def _check_budget(cfg, procfile, config_path):
    from linli import SERVICES
    from shared import budget
    from shared.config import ConfigError
    from shared.db import connect
    if procfile:
        try:
            # Lines without their own LINLI_CONFIG run with this one, as the Makefile runs the local tree.
            # The environment overrides every process's file, as it does under the local supervisor.
            processes = budget.procfile(procfile, config_path or "deploy/config/local.yaml", environ=os.environ)
        except (ConfigError, OSError) as exc:
            raise click.ClickException(f"cannot read the tree in {procfile}: {exc}")
        what = f"the tree in {procfile} ({len(processes)} processes)"
    else:
        services = [s for s in SERVICES if cfg["LEVEL"] == "street" or s != "points"]
        processes = [(s, s, cfg) for s in services]
        what = f"{cfg['INSTANCE']} (one process per service)"
    per = {}
    for name, service, pcfg in processes:
        per[name] = budget.process_connections(service, pcfg)
    total = sum(per.values())
    click.echo(f"# connection budget of {what}: {total} at most: "
               + ", ".join(f"{name} {n}" for name, n in per.items()))
    try:
        with connect(cfg["DATABASE_URL"], connect_timeout=5, autocommit=True) as conn:
            max_connections = int(conn.execute("SHOW max_connections").fetchone()["max_connections"])
            use = conn.execute("SELECT count(*) AS n, count(*) FILTER (WHERE state = 'idle') AS idle "
                               "FROM pg_stat_activity WHERE backend_type = 'client backend'").fetchone()
    except Exception as exc:  # the budget can still be read; the server's side cannot
        click.echo(f"# server: not asked ({type(exc).__name__}: {str(exc).strip()})")
        click.echo(f"warning: could not read max_connections: {str(exc).strip()}", err=True)
        return
    allowed = budget.allowance(max_connections)
    click.echo(f"# server: max_connections {max_connections}; the budget may use {allowed} "
               f"({int(budget.SPARE * 100)}% kept free); in use now {use['n']} ({use['idle']} idle)")
    if budget.fits(total, max_connections):
        click.echo(f"# fits: {total} of {allowed}")
    else:
        click.echo(f"warning: {what} may hold {total} connections, more than the {allowed} that leave "
                   f"{int(budget.SPARE * 100)}% of max_connections {max_connections} free: lower DB_POOL_MAX "
                   f"(or DB_POOL_SIZES), or raise max_connections", err=True)


@main.command()
@click.argument("service", type=click.Choice(sorted(SERVICES)))
@click.pass_context
def run(ctx, service):
    """Run one service in the foreground until SIGTERM."""
    from nameko.cli.run import run as nameko_run
    cfg = load_config(ctx)
    logs.configure(cfg["LOG_LEVEL"], service=service, instance=cfg["INSTANCE"])
    cls = service_class(service)
    _tune_gc()
    nameko_run([cls], cfg)


def _tune_gc():
    """Fewer, later cyclic collections. A fact batch or a page of rows is tens of thousands of
    short-lived dicts, and at the default threshold (700) each of them triggered collections that
    walked the whole heap, modules included: a fifth of the aggregator's time in `make bench`.
    What import built is frozen out of the collector's sight; nothing here relies on prompt cycle
    collection (reference counting frees the rest)."""
    import gc
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


@main.command()
@click.option("--service", "services", multiple=True, help="Only these services (default: all).")
@click.option("--wait", is_flag=True, help="Apply nothing: wait until every migration this code ships has been "
                                           "applied (by the release's migrate job), then exit 0.")
@click.option("--timeout", default=600, show_default=True, type=click.IntRange(1, 86400),
              help="With --wait: give up (exit 1) after this many seconds.")
@click.pass_context
def migrate(ctx, services, wait, timeout):
    """Apply pending SQL migrations (safe to run from several replicas at once)."""
    from shared.migrations import migrate as run_migrations
    cfg = load_config(ctx)
    if wait:
        return _wait_for_migrations(cfg, list(services) or None, timeout)
    applied = run_migrations(cfg["DATABASE_URL"], list(services) or None)
    for service, version in applied:
        click.echo(f"applied {service} {version}")
    click.echo(f"{len(applied)} migration(s) applied")


def _wait_for_migrations(cfg, services, timeout):
    """A pod's init step: start only once the schema is what this image expects (DB down counts as not yet)."""
    import time as clock
    import psycopg
    from shared.migrations import MigrationError, pending
    deadline, left, said = clock.monotonic() + timeout, None, None
    while True:
        try:
            left = pending(cfg["DATABASE_URL"], services)
            why = f"{len(left)} migration(s) not applied yet, first {left[0][0]} {left[0][1]}" if left else None
        except psycopg.OperationalError as exc:
            # Unreachable, refused or not yet created: the database may be starting with the release.
            left = [("database", str(exc).strip().splitlines()[0] if str(exc).strip() else "unreachable")]
            why = f"database: {left[0][1]}"
        except MigrationError as exc:
            raise click.ClickException(str(exc))
        if not left:
            click.echo("every migration this release ships is applied")
            return
        if why != said:  # one line per change of reason, so a pod's log says what it waits for
            click.echo(f"waiting: {why}")
            said = why
        if clock.monotonic() >= deadline:
            raise click.ClickException(f"still waiting after {timeout}s for {len(left)} migration(s): "
                                       + ", ".join(f"{s} {v}" for s, v in left[:5]))
        clock.sleep(min(2.0, max(0.1, deadline - clock.monotonic())))


@main.command("openapi")
def openapi_document():
    """Print the HTTP API's OpenAPI document (the console's types are generated from it)."""
    from services.gateway import openapi
    from services.gateway.service import VERSION
    click.echo(json.dumps(openapi.build(VERSION), ensure_ascii=False, indent=1))


@main.group()
def topology():
    """RabbitMQ exchanges and queues."""


@topology.command("apply")
@click.pass_context
def topology_apply(ctx):
    """Create the vhost if needed; declare exchanges, handler queues and dead-letter queues."""
    from shared.messaging import apply_topology, ensure_vhost
    cfg = load_config(ctx)
    vhost = ensure_vhost(cfg["RABBIT_MANAGEMENT_URL"], cfg["AMQP_URI"])
    for line in apply_topology(cfg, all_service_classes()):
        click.echo(f"declared {line}")
    click.echo(f"topology applied to vhost {vhost}")


@main.group()
def token():
    """API tokens."""


@token.command("create")
@click.option("--name", required=True, help="Who holds it, e.g. 长海路街道 办公室.")
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--prefix", "node_prefix", help="Node code it reaches (default: this instance's node).")
@click.option("--expires-days", type=click.IntRange(1, 3650), help="Expire after this many days.")
@click.option("--organization", "organization_id", type=int,
              help="For an organization_leader (required then): the id of the organisation they lead.")
@click.option("--resident", "resident_id", type=int,
              help="For a resident (required then): their resident id; --prefix must be their community.")
@click.pass_context
def token_create(ctx, name, role, node_prefix, expires_days, organization_id, resident_id):
    """Create a token and print it once (only its hash is stored)."""
    from services.gateway import auth, store
    from shared.db import connect
    from shared.errors import ValidationFailed
    cfg = load_config(ctx)
    node_prefix = node_prefix or cfg["NODE_CODE"]
    token_id, secret = auth.new_token()
    expires = datetime.now(timezone.utc) + timedelta(days=expires_days) if expires_days else None
    with connect(cfg["DATABASE_URL"]) as conn:
        try:
            auth.validate_grant(name, role, node_prefix, cfg["NODE_CODE"], organization_id, resident_id)
            _grant_names_the_register(conn, node_prefix, organization_id, resident_id)
        except ValidationFailed as exc:
            raise click.ClickException(f"{exc.message}: {json.dumps(exc.fields, ensure_ascii=False)}")
        conn.execute("SET search_path TO gateway")
        store.add(conn, token_id, secret, name, role, node_prefix, expires, organization_id, resident_id)
    click.echo(secret)


@main.group()
def account():
    """Staff accounts of the console (people sign in with these; machines use tokens)."""


def _gateway_conn(cfg):
    from shared.db import connect
    conn = connect(cfg["DATABASE_URL"])
    conn.execute("SET search_path TO gateway")
    return conn


def _account_named(conn, username):
    row = conn.execute("SELECT account_id FROM staff_accounts WHERE username = %s", (username,)).fetchone()
    if row is None:
        raise click.ClickException(f"no account {username}")
    return row


@account.command("create")
@click.option("--username", required=True, help="What they sign in with: 3-40 of a-z 0-9 . _ -")
@click.option("--name", "display_name", required=True, help="Their name as shown, e.g. 王丽.")
@click.option("--role", required=True, type=click.Choice(ACCOUNT_ROLES))
@click.option("--prefix", "node_prefix", help="Node code they reach (default: this instance's node).")
@click.option("--organization", "organization_id", type=int,
              help="For an organization_leader (required then): the id of the organisation they lead.")
@click.option("--reset-if-exists", is_flag=True,
              help="If the user name exists, give it a new password instead of failing (make up's demo accounts).")
@click.option("--no-forced-change", is_flag=True,
              help="Do not make them change the password at first sign-in (demo accounts only).")
@click.pass_context
def account_create(ctx, username, display_name, role, node_prefix, organization_id, reset_if_exists,
                   no_forced_change):
    """Create an account (the first street admin, say) and print its first password once; it must be
    changed at the first sign-in."""
    from services.gateway import accounts, store
    from shared.errors import ValidationFailed
    cfg = load_config(ctx)
    node_prefix = node_prefix or cfg["NODE_CODE"]
    password = accounts.new_password()
    with _gateway_conn(cfg) as conn:
        try:
            accounts.check_new_account(username, display_name, role, node_prefix, organization_id, None,
                                       cfg["NODE_CODE"], roles=ACCOUNT_ROLES)
            _grant_names_the_register(conn, node_prefix, organization_id, None)
        except ValidationFailed as exc:
            raise click.ClickException(f"{exc.message}: {json.dumps(exc.fields, ensure_ascii=False)}")
        forced = not no_forced_change
        row = conn.execute(store.INSERT_ACCOUNT, (username, display_name, accounts.hash_password(password), role,
                                                  node_prefix, organization_id, forced, "cli")).fetchone()
        if row is None:
            if not reset_if_exists:
                raise click.ClickException(f"the user name {username} is taken")
            row = conn.execute("SELECT account_id FROM staff_accounts WHERE username = %s", (username,)).fetchone()
            conn.execute(store.SET_PASSWORD, (accounts.hash_password(password), forced, row["account_id"]))
            conn.execute(store.ENABLE, (row["account_id"],))
            conn.execute(store.END_SESSIONS_OF, (row["account_id"], None))
            store.audit(conn, "password_reset", username, row["account_id"], "cli", "cli")
        else:
            store.audit(conn, "created", username, row["account_id"], "cli", "cli")
    click.echo(password)


@account.command("list")
@click.pass_context
def account_list(ctx):
    from services.gateway import store
    cfg = load_config(ctx)
    with _gateway_conn(cfg) as conn:
        now = conn.execute(store.NOW).fetchone()["now"]
        for row in conn.execute(store.ACCOUNTS_UNDER, ("",)).fetchall():
            locked = row["locked_until"] is not None and row["locked_until"] > now
            state = "disabled" if row["disabled_at"] else "locked" if locked else "active"
            click.echo(f"{row['account_id']:>5}  {row['username']:<20} {row['role']:<19} {row['node_prefix']:<15} "
                       f"{state:<8} {row['display_name']}")


@account.command("reset-password")
@click.argument("username")
@click.pass_context
def account_reset_password(ctx, username):
    """Give an account a new password, printed once; it must be changed at the next sign-in, and the
    account's sessions end. Also lifts a lock."""
    from services.gateway import accounts, store
    cfg = load_config(ctx)
    password = accounts.new_password()
    with _gateway_conn(cfg) as conn:
        row = _account_named(conn, username)
        conn.execute(store.SET_PASSWORD, (accounts.hash_password(password), True, row["account_id"]))
        conn.execute(store.END_SESSIONS_OF, (row["account_id"], None))
        store.audit(conn, "password_reset", username, row["account_id"], "cli", "cli")
    click.echo(password)


@account.command("enable")
@click.argument("username")
@click.pass_context
def account_enable(ctx, username):
    """Enable a disabled account again, and lift a lock."""
    from services.gateway import store
    cfg = load_config(ctx)
    with _gateway_conn(cfg) as conn:
        row = _account_named(conn, username)
        conn.execute(store.ENABLE, (row["account_id"],))
        conn.execute(store.SET_LOCK_LIFTED, (row["account_id"],))
        store.audit(conn, "enabled", username, row["account_id"], "cli", "cli")
    click.echo(f"enabled {username}")


@account.command("disable")
@click.argument("username")
@click.pass_context
def account_disable(ctx, username):
    """Disable an account: it can no longer sign in, and its sessions end."""
    from services.gateway import store
    cfg = load_config(ctx)
    with _gateway_conn(cfg) as conn:
        row = _account_named(conn, username)
        if conn.execute(store.DISABLE, (row["account_id"],)).rowcount:
            conn.execute(store.END_SESSIONS_OF, (row["account_id"], None))
            store.audit(conn, "disabled", username, row["account_id"], "cli", "cli")
    click.echo(f"disabled {username}")


def _grant_names_the_register(conn, node_prefix, organization_id, resident_id):
    """The resident or organisation a token is for is on this instance's register, live and inside
    --prefix: a token for nobody, or for someone the prefix does not reach, is refused, not stored."""
    from shared.errors import ValidationFailed
    errors = {}
    if resident_id is not None:
        row = conn.execute("SELECT community_code, status FROM registry.residents WHERE id = %s",
                           (resident_id,)).fetchone()
        if row is None:
            errors["resident_id"] = [f"no resident {resident_id} on this instance's register"]
        elif row["status"] != "active":
            errors["resident_id"] = [f"resident {resident_id} is {row['status']}"]
        elif row["community_code"] != node_prefix:
            errors["node_prefix"] = [f"resident {resident_id} lives in community {row['community_code']}, "
                                     f"not {node_prefix}"]
    if organization_id is not None:
        row = conn.execute("SELECT community_code, status FROM registry.organizations WHERE id = %s",
                           (organization_id,)).fetchone()
        if row is None:
            errors["organization_id"] = [f"no organisation {organization_id} on this instance's register"]
        elif row["status"] == "dissolved":
            errors["organization_id"] = [f"organisation {organization_id} is dissolved"]
        elif not row["community_code"].startswith(node_prefix):
            errors["node_prefix"] = [f"organisation {organization_id} is of community {row['community_code']}, "
                                     f"outside {node_prefix}"]
    if errors:
        raise ValidationFailed("the token cannot be created", errors)


@token.command("list")
@click.pass_context
def token_list(ctx):
    from services.gateway import store
    from shared.db import connect
    cfg = load_config(ctx)
    with connect(cfg["DATABASE_URL"]) as conn:
        conn.execute("SET search_path TO gateway")
        for row in store.list_tokens(conn):
            state = "revoked" if row["revoked_at"] else "expired" if row["expired"] else "active"
            click.echo(f"{row['token_id']}  {row['role']:<19} {row['node_prefix']:<15} {state:<8} {row['name']}")


@token.command("revoke")
@click.argument("token_id")
@click.pass_context
def token_revoke(ctx, token_id):
    from services.gateway import store
    from shared.db import connect
    cfg = load_config(ctx)
    with connect(cfg["DATABASE_URL"]) as conn:
        conn.execute("SET search_path TO gateway")
        if not store.revoke(conn, token_id):
            raise click.ClickException(f"no active token {token_id}")
    click.echo(f"revoked {token_id}")


def registry_tx(cfg):
    """A registry transaction outside nameko, with the instance's source and fact signer."""
    from shared.db import transaction
    from shared.facts import Signer
    return transaction(cfg["DATABASE_URL"], "registry", envelope.source_from_config("registry", cfg),
                       Signer.from_config(cfg))


@main.group()
def nodes():
    """This instance's nodes as the levels above see them: names, splits and merges, boundaries."""


@nodes.command("announce")
@click.pass_context
def nodes_announce(ctx):
    """Describe every node of this street again to the levels above (names, splits, merges): for nodes
    registered before nodes were announced, or a parent linked late. Safe to repeat."""
    from services.registry import nodes as registry_nodes
    cfg = load_config(ctx)
    with registry_tx(cfg) as tx:
        n = registry_nodes.announce_all(tx)
    click.echo(f"{n} node(s) announced to the level above")


@nodes.group("boundaries")
def boundaries():
    """Node boundaries for the dashboards' maps."""


@boundaries.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.pass_context
def boundaries_import(ctx, path):
    """Import boundaries from a GeoJSON FeatureCollection of Polygons or MultiPolygons in WGS 84
    longitude/latitude, each feature naming its node in properties.code (and optionally name).
    A boundary imported again replaces the old one. Nothing is imported if any feature is wrong;
    features of nodes outside this instance are skipped, so one district-wide file serves every instance."""
    from services.aggregator import dashboard
    from shared.db import transaction
    cfg = load_config(ctx)
    try:
        if pathlib.Path(path).stat().st_size > dashboard.MAX_FILE_BYTES:
            raise ValueError(f"larger than {dashboard.MAX_FILE_BYTES // 2 ** 20} MiB: simplify the boundaries first")
        text = pathlib.Path(path).read_text(encoding="utf-8-sig")
        parsed, skipped = dashboard.parse_boundaries(text, cfg["NODE_CODE"])
    except (UnicodeDecodeError, ValueError) as exc:
        raise click.ClickException(f"{path}: {exc}")
    with transaction(cfg["DATABASE_URL"], "aggregator") as tx:
        n = dashboard.import_boundaries(tx, parsed)
    click.echo(f"{n} boundary(ies) imported" + (f", {skipped} outside {cfg['NODE_CODE']} skipped" if skipped else ""))


@main.group("import")
def import_():
    """Bulk imports from spreadsheets (CSV, UTF-8 or GB18030)."""


def _import_options(command):
    """The arguments and options every import takes."""
    for option in reversed([
            click.argument("file", type=click.File("rb")),
            click.option("--mode", type=click.Choice(["all_or_nothing", "valid_rows"]), default="all_or_nothing",
                         show_default=True, help="Refuse the whole file on any bad row, or write the good rows."),
            click.option("--actor", default="cli", show_default=True, help="Recorded as who registered the rows."),
            click.option("--report", "report_path", type=click.Path(dir_okay=False, writable=True),
                         help="Also write the full report as JSON here."),
            click.pass_context]):
        command = option(command)
    return command


def _run_import(ctx, run, file, mode, actor, report_path):
    """Run an import (`run` is importer.import_residents or alike) on FILE and print its per-row report.

    Exits non-zero when the file is unreadable or nothing was registered.
    """
    from shared.protect import Vault
    from shared.errors import ValidationFailed
    cfg = load_config(ctx)
    data = file.read()
    rows = max(data.count(b"\n") - 1, 1)
    try:
        with registry_tx(cfg) as tx, click.progressbar(length=rows, label="checking rows", file=sys.stderr) as bar:
            report = run(tx, Vault.from_config(cfg), data, mode, {"actor": f"cli:{actor}", "scope": cfg["NODE_CODE"]},
                         progress=bar.update)
    except ValidationFailed as exc:
        raise click.ClickException(f"{exc.message}\n" + "\n".join(
            f"  {field}: {msg}" for field, msgs in exc.fields.items() for msg in msgs))
    if report_path:
        with open(report_path, "w", encoding="utf-8") as out:
            json.dump(report, out, ensure_ascii=False, indent=1)
    for e in report["errors"][:50]:
        click.echo(f"row {e['row']:>7}  {e['field']:<15} {e['message']}")
    if len(report["errors"]) > 50:
        click.echo(f"… {len(report['errors']) - 50} more problem(s); use --report FILE for all of them")
    click.echo(f"{report['rows']} row(s) read ({report['encoding']}): {report['accepted']} valid, "
               f"{report['rejected']} rejected, {report['written']} registered")
    if report["rejected"] and not report["written"]:
        raise click.ClickException("nothing was registered" + (
            " (all_or_nothing: fix the rows above or use --mode valid_rows)" if mode == "all_or_nothing" else ""))


@import_.command("residents")
@_import_options
def import_residents(ctx, file, mode, actor, report_path):
    """Register the residents listed in FILE; prints a per-row report of every problem."""
    from services.registry import importer
    _run_import(ctx, importer.import_residents, file, mode, actor, report_path)


@import_.command("party-members")
@_import_options
def import_party_members(ctx, file, mode, actor, report_path):
    """Register the party members listed in FILE (residents already on the register, found by ID number).

    A row with a report date (报到日期) is also reported to the community with its posts; a branch or
    building group is found by name in the resident's community. Prints a per-row report of every problem.
    """
    from services.registry import party_import
    _run_import(ctx, party_import.import_party_members, file, mode, actor, report_path)


@main.group()
def demo():
    """Demo data."""


@demo.command("load")
@click.pass_context
def demo_load(ctx):
    """Load the demo hierarchy, residents, party, organisations and workers (idempotent; through the outbox)."""
    from linli.demo import demo_communities, load_hierarchy, load_residents
    from linli.demo.civic import load_civic
    from shared.protect import Vault
    cfg = load_config(ctx)
    with registry_tx(cfg) as tx:
        added, skipped = load_hierarchy(tx, cfg["NODE_CODE"])
    click.echo(f"demo: {len(added)} node(s) added, {len(skipped)} outside this instance left for its own")
    if cfg["LEVEL"] != "street":
        # Personal records live in the street instances only; a district or city learns of them as facts.
        click.echo(f"demo: a {cfg['LEVEL']} holds no residents; its figures come from its streets' facts")
        return
    vault = Vault.from_config(cfg)
    with registry_tx(cfg) as tx:
        residents = load_residents(tx, vault, cfg["NODE_CODE"])
    click.echo(f"demo: {residents} resident(s) registered" if residents else "demo: residents already registered")
    with registry_tx(cfg) as tx:
        civic = load_civic(tx, vault, demo_communities(tx, cfg["NODE_CODE"]), cfg["NODE_CODE"])
    click.echo("demo: " + ", ".join(f"{n} {what.replace('_', ' ')}" for what, n in civic.items()) + " added"
               if civic else "demo: party, organisations and workers already loaded")
    points = _demo_points(cfg, vault)
    click.echo("demo: points " + ", ".join(f"{n} {what.replace('_', ' ')}" for what, n in points.items())
               if points else "demo: points already loaded")
    consultation = _demo_consultation(cfg, vault)
    click.echo("demo: consultation " + ", ".join(f"{n} {what.replace('_', ' ')}" for what, n in consultation.items())
               if consultation else "demo: consultation already loaded")


@demo.command("notices")
@click.option("--wait", default=60, show_default=True, help="Seconds to wait for the subscribers to arrive.")
@click.pass_context
def demo_notices(ctx, wait):
    """Send the demo notices (needs the services running: subscribers follow the registry's events)."""
    import time as clock
    from datetime import datetime, timezone
    from linli.demo import demo_communities
    from linli.demo.notification import load_notices
    from services.registry import nodes as registry_nodes
    from shared.db import transaction
    cfg = load_config(ctx)
    deadline = clock.monotonic() + wait
    with registry_tx(cfg) as rtx:
        communities = demo_communities(rtx, cfg["NODE_CODE"])
        expected = rtx.one("SELECT count(*) AS n FROM residents WHERE status = 'active'")["n"]
    while True:
        with transaction(cfg["DATABASE_URL"], "notification") as ntx:
            have = ntx.one("SELECT count(*) AS n FROM subscribers WHERE status = 'active'")["n"]
        if have >= expected or clock.monotonic() > deadline:
            break
        clock.sleep(1)
    with registry_tx(cfg) as rtx, transaction(cfg["DATABASE_URL"], "notification",
                                              envelope.source_from_config("notification", cfg)) as ntx:
        sent = load_notices(ntx, lambda code: registry_nodes.get(rtx, code), cfg["NODE_CODE"], communities,
                            datetime.now(timezone.utc), cfg.get("DIGEST_HOUR", 19))
    click.echo("demo: notification " + ", ".join(f"{n} {what.replace('_', ' ')}" for what, n in sent.items())
               if sent else "demo: notices already sent")


def _registry_people(rtx, vault):
    """The registry's answer on a resident, as the services get it by RPC."""
    from services.registry import holders as registry_holders
    return lambda kind, ref, caller: registry_holders.account_holder(rtx, vault, kind, ref,
                                                                     {**caller, "actor": "service:demo"})


def _demo_consultation(cfg, vault):
    from linli.demo.consultation import load_consultation
    from shared.db import transaction
    from shared.facts import Signer
    with registry_tx(cfg) as rtx, transaction(cfg["DATABASE_URL"], "consultation",
                                              envelope.source_from_config("consultation", cfg),
                                              Signer.from_config(cfg)) as ctx:
        by_community = {}
        for r in rtx.all("SELECT id, community_code FROM residents WHERE status = 'active' ORDER BY id"):
            by_community.setdefault(r["community_code"], []).append(r["id"])
        holder = _registry_people(rtx, vault)
        return load_consultation(ctx, lambda rid, caller: holder("person", rid, caller),
                                 {c: ids[:10] for c, ids in by_community.items()}, cfg["NODE_CODE"])


def _demo_points(cfg, vault):
    """The points demo, asking the registry who holds each account as the points service would (by RPC)."""
    from linli.demo.points import load_points
    from shared.db import transaction
    from shared.facts import Signer
    with registry_tx(cfg) as rtx, transaction(cfg["DATABASE_URL"], "points",
                                              envelope.source_from_config("points", cfg),
                                              Signer.from_config(cfg)) as ptx:
        people = [r["id"] for r in rtx.all(
            "SELECT resident_id AS id FROM party_members WHERE report_status = 'reported' UNION "
            "SELECT m.resident_id FROM organization_members m JOIN organizations o ON o.id = m.organization_id "
            "WHERE o.category = 'volunteer_team' AND m.left_on IS NULL ORDER BY id")]
        return load_points(ptx, _registry_people(rtx, vault), people, cfg["NODE_CODE"])


@main.group()
def outbox():
    """The transactional outbox."""


@outbox.command("status")
@click.pass_context
def outbox_status(ctx):
    """Backlog, age of the oldest unsent event and retries, per service; and the events no queue
    took, kept in the service's bounded `<service>.events.unrouted` queue (`-` where it has none)."""
    from shared import instance
    from shared.db import transaction
    from shared.messaging import UNROUTED_MAX_LENGTH, unrouted_depths
    from shared.migrations import services_with_migrations
    cfg = load_config(ctx)
    services = sorted(set(services_with_migrations()))
    try:
        unrouted = unrouted_depths(cfg["AMQP_URI"], services)
    except Exception as exc:  # the outbox figures are still worth showing with the broker away
        unrouted = {}
        click.echo(f"unrouted: broker unavailable ({exc})", err=True)
    # The same figures as the console's operator view (shared/instance.py).
    with transaction(cfg["DATABASE_URL"], "public") as tx:
        rows = instance.outboxes(tx, services)
    click.echo(f"{'service':<14}{'backlog':>9}{'oldest (s)':>12}{'retrying':>10}{'sent':>10}{'unrouted':>10}")
    for row in rows:
        kept = unrouted.get(row["service"])
        click.echo(f"{row['service']:<14}{row['backlog']:>9}{row['oldest_seconds']:>12.1f}"
                   f"{row['retrying']:>10}{row['sent']:>10}{'-' if kept is None else kept:>10}")
    bound = cfg.get("UNROUTED_MAX_LENGTH", UNROUTED_MAX_LENGTH)
    click.echo(f"unrouted: events no queue is bound for, kept (newest {bound} per service) in "
               "<service>.events.unrouted; '-': no such queue (run `linli topology apply`)")


@main.group()
def handovers():
    """Points balances handed to other streets when residents leave."""


@handovers.command("resend")
@click.option("--transfer-id", help="One handover (default: all kept ones, or those since --since).")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), help="Only handovers from this day on.")
@click.pass_context
def handovers_resend(ctx, transfer_id, since):
    """Send kept handovers again: a street applies each transfer id once, however often it arrives."""
    from services.points import handover
    from shared.db import transaction
    from shared.facts import Signer
    cfg = load_config(ctx)
    with transaction(cfg["DATABASE_URL"], "points", envelope.source_from_config("points", cfg),
                     Signer.from_config(cfg)) as tx:
        sent = handover.resend(tx, transfer_id, since)
    click.echo(f"{len(sent)} handover(s) queued again" + (": " + ", ".join(sent) if sent else ""))



@main.group()
def instance():
    """This instance's identity."""


@instance.command("key")
@click.pass_context
def instance_key(ctx):
    """Print this instance's Ed25519 public key (what its parent registers with `linli child add`)."""
    from shared.facts import Signer
    click.echo(Signer.from_config(load_config(ctx)).public_key)


def _management(cfg):
    """This instance's vhost on the management API, patient as an operator's command may be."""
    from shared import federation
    return federation.Management(cfg["RABBIT_MANAGEMENT_URL"], cfg["AMQP_URI"], patient=True)


@main.group()
def child():
    """Instances below this one (a district's streets, a city's districts) and their federation links."""


def _child_code(cfg, code):
    import re
    below = {"city": 6, "district": 9}.get(cfg["LEVEL"])
    if below is None:
        raise click.ClickException(f"a {cfg['LEVEL']} instance has no child instances")
    if not re.fullmatch(r"[0-9]+", code) or len(code) != below or not code.startswith(cfg["NODE_CODE"]):
        raise click.ClickException(f"--code: a child of {cfg['NODE_CODE']} has {below} digits and starts with it")
    return code


@child.command("add")
@click.option("--code", required=True, help="The child's node code (a district's street: 9 digits).")
@click.option("--public-key", required=True, help="The child's Ed25519 public key (`linli instance key` there).")
@click.option("--amqp-uri", required=True, help="The child's broker and vhost, as this broker reaches it.")
@click.option("--parent-amqp-uri", help="Also set up the child's side (what `linli parent set` does there): this "
                                        "instance's broker and vhost as the child reaches it, e.g. the URI of "
                                        "`linli link-user add --for CODE`. Only where this instance may manage "
                                        "the child's broker: the same broker, or --child-management-url.")
@click.option("--child-management-url", help="With --parent-amqp-uri: the child broker's management API "
                                             "(default: this instance's RABBIT_MANAGEMENT_URL, one broker).")
@click.pass_context
def child_add(ctx, code, public_key, amqp_uri, child_management_url, parent_amqp_uri):
    """Register a child: trust its key for its subtree and federate its facts and cases up.

    Our directives go down once the child runs `linli parent set` (or with --parent-amqp-uri)."""
    from services.aggregator import store
    from shared import federation
    from shared.db import transaction
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from shared.facts import _unb64
    cfg = load_config(ctx)
    code = _child_code(cfg, code)
    try:
        Ed25519PublicKey.from_public_bytes(_unb64(public_key))
    except (ValueError, TypeError):
        raise click.ClickException("--public-key: not an Ed25519 public key (urlsafe base64 of 32 bytes)")
    # The key first: the child's first batches may arrive as soon as the link is up.
    with transaction(cfg["DATABASE_URL"], "aggregator") as tx:
        tx.execute(store.ADD_CHILD, (code, public_key, amqp_uri))
    try:
        federation.add_child(_management(cfg), code, amqp_uri)
        if parent_amqp_uri:
            below = federation.Management(child_management_url or cfg["RABBIT_MANAGEMENT_URL"], amqp_uri, patient=True)
            federation.set_parent(below, _amqp_uri(parent_amqp_uri, "--parent-amqp-uri"))
    except (federation.FederationError, OSError) as exc:
        raise click.ClickException(f"federation: {exc} (the child's key is stored; run `child add` again)")
    click.echo(f"child {code} added: its facts and cases federate into {cfg['NODE_CODE']}'s")
    if parent_amqp_uri:
        click.echo(f"  and {cfg['NODE_CODE']}'s directives into {code}'s")
    else:
        click.echo(f"  for our directives to reach it: `linli link-user add --for {code} --vhost <its vhost>` here, "
                   "then `linli parent set --amqp-uri <that URI>` at the child")


def _amqp_uri(uri, option):
    if not uri.startswith(("amqp://", "amqps://")):
        raise click.ClickException(f"{option}: the federation plugin takes amqp:// or amqps:// URIs")
    return uri


@main.group()
def parent():
    """The instance above this one (a street's district, a district's city)."""


@parent.command("set")
@click.option("--amqp-uri", required=True, help="The parent's broker and vhost as this broker reaches it, with the "
                                                "user the parent made for this link (`linli link-user add` there).")
@click.pass_context
def parent_set(ctx, amqp_uri):
    """Federate the parent's directives into ours, through this broker's own management API."""
    from shared import federation
    cfg = load_config(ctx)
    if cfg["LEVEL"] == "city":
        raise click.ClickException("a city instance has no parent")
    try:
        federation.set_parent(_management(cfg), _amqp_uri(amqp_uri, "--amqp-uri"))
    except (federation.FederationError, OSError) as exc:
        raise click.ClickException(f"federation: {exc}")
    click.echo(f"the parent's directives now federate into {cfg['NODE_CODE']}'s; set PARENT_KEY to its "
               "`linli instance key` if not yet done")


@child.command("list")
@click.pass_context
def child_list(ctx):
    """Each child, its federation link state, the last fact seen from it, and, per service, whether
    anything it sent is missing (shared/streams.py)."""
    import psycopg
    from services.aggregator import store
    from shared import federation, streams
    from shared.db import transaction
    cfg = load_config(ctx)
    with transaction(cfg["DATABASE_URL"], "aggregator") as tx:
        rows = tx.all(store.CHILDREN)
        positions = streams.positions(tx)
    try:
        with transaction(cfg["DATABASE_URL"], "consultation") as tx:   # the cases children escalate
            positions += streams.positions(tx)
    except psycopg.errors.UndefinedTable:
        pass   # an instance that runs no consultation service (a city's aggregator alone)
    try:
        links = {link["upstream"]: link for link in
                 _management(cfg).links()}
    except (federation.FederationError, OSError) as exc:
        links, note = {}, f" (management API: {exc})"
    else:
        note = ""
    click.echo(f"{'code':<10} {'link':<10} {'last fact':<26} added{note}")
    for r in rows:
        link = links.get(federation.child_upstream(r["code"]), {})
        seen = r["last_fact_at"].isoformat(timespec="seconds") if r["last_fact_at"] else "never"
        click.echo(f"{r['code']:<10} {link.get('status') or 'down':<10} {seen:<26} "
                   f"{r['added_at'].isoformat(timespec='seconds')}")
        for p in (p for p in positions if p["source"] == r["code"]):
            gap = (f"{p['missing']} missing, oldest gap {p['oldest_gap_seconds']:.0f} s" if p["missing"]
                   else "nothing missing")
            click.echo(f"    {p['service']:<13} {p['stream']:<6} contiguous {p['contiguous']:<8} {gap}; "
                       f"resends requested {p['resends_requested']}, answered {p['resends_answered']}")


@child.command("remove")
@click.option("--code", required=True)
@click.pass_context
def child_remove(ctx, code):
    """Stop federating a child's facts and stop trusting its key (its figures so far stay)."""
    from services.aggregator import store
    from shared import federation
    from shared.db import transaction
    cfg = load_config(ctx)
    try:
        federation.remove_child(_management(cfg), code)
    except (federation.FederationError, OSError) as exc:
        raise click.ClickException(f"federation: {exc}")
    with transaction(cfg["DATABASE_URL"], "aggregator") as tx:
        if tx.execute(store.REMOVE_CHILD, (code,)).rowcount == 0:
            raise click.ClickException(f"no child {code}")
    click.echo(f"child {code} removed")


@main.group()
def rollups():
    """The aggregator's roll-ups."""


@rollups.command("rebuild")
@click.pass_context
def rollups_rebuild(ctx):
    """Recompute every roll-up from the facts log (the same numbers, by construction)."""
    from services.aggregator import ingest
    from shared.db import transaction
    cfg = load_config(ctx)
    with transaction(cfg["DATABASE_URL"], "aggregator") as tx:
        n = ingest.rebuild(tx, cfg["NODE_CODE"])
    click.echo(f"roll-ups rebuilt from {n} facts")


@main.group("feed-user")
def feed_user():
    """Read-only AMQP users for superior departments' feeds."""


@feed_user.command("add")
@click.argument("name")
@click.pass_context
def feed_user_add(ctx, name):
    """Create user feed-NAME and its queue feed-NAME, bound to `feed` (changed roll-ups under the small-cell
    rule, never facts): the user may read that queue only. Adding an existing user again moves it over."""
    import re
    import secrets
    from shared import federation
    if not re.fullmatch(r"[a-z][a-z0-9-]{1,30}", name):
        raise click.ClickException("NAME: 2 to 31 lowercase letters, digits or -")
    cfg = load_config(ctx)
    password = secrets.token_urlsafe(24)
    try:
        management = _management(cfg)
        user = federation.feed_user(management, name, password)
    except (federation.FederationError, OSError) as exc:
        raise click.ClickException(f"management API: {exc}")
    click.echo(f"user {user} password {password}")
    click.echo(f"  it may read the queue {user} (bound to the `feed` exchange: changed roll-ups, as GET "
               f"/api/v1/feed gives them) and nothing else; consume it without declaring it, or declare it passively")



@main.group("link-user")
def link_user_group():
    """AMQP users for the federation links to the level above and below, one per link."""


@link_user_group.command("add")
@click.option("--for", "reader", required=True,
              help="The instance that will connect: this instance's parent (it reads our facts and cases) "
                   "or one of its children (it reads our directives).")
@click.option("--vhost", "reader_vhost", required=True,
              help="That instance's own vhost (on its broker): the federation plugin names what it declares "
                   "here after it, and the user may touch nothing else.")
@click.pass_context
def link_user_add(ctx, reader, reader_vhost):
    """Create (or reset) the user a parent or child links with; prints the AMQP URI to hand over."""
    import re
    import secrets
    from urllib.parse import quote, urlsplit, urlunsplit
    from shared import federation
    cfg = load_config(ctx)
    own, digits = cfg["NODE_CODE"], config_mod.LEVEL_DIGITS
    above = {"street": digits["district"], "district": digits["city"]}.get(cfg["LEVEL"])
    below = {"city": digits["district"], "district": digits["street"]}.get(cfg["LEVEL"])
    if re.fullmatch(r"[0-9]+", reader) and len(reader) == above and own.startswith(reader):
        exchanges, what = federation.PARENT_READS, "our facts and escalated cases"
    elif re.fullmatch(r"[0-9]+", reader) and len(reader) == below and reader.startswith(own):
        exchanges, what = federation.CHILD_READS, "our directives"
    else:
        raise click.ClickException(f"--for: neither the parent nor a child of {cfg['LEVEL']} {own}")
    password = secrets.token_urlsafe(24)
    try:
        user = federation.link_user(_management(cfg), reader, reader_vhost, exchanges, password)
    except (federation.FederationError, OSError) as exc:
        raise click.ClickException(f"management API: {exc}")
    parts = urlsplit(cfg["AMQP_URI"])
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    click.echo(f"user {user} password {password}")
    # The federation plugin knows amqp:// and amqps:// only (not kombu's pyamqp://).
    scheme = "amqps" if parts.scheme.endswith("amqps") else "amqp"
    click.echo("uri " + urlunsplit(parts._replace(
        scheme=scheme, netloc=f"{quote(user, safe='')}:{quote(password, safe='')}@{host}")))
    click.echo(f"  {reader} may federate {what} through it, and nothing else; give {reader} the URI with "
               "this broker's address as it is reached from there")


@main.group("facts")
def facts_group():
    """This instance's facts log."""


@facts_group.command("resend")
@click.pass_context
def facts_resend(ctx):
    """Send everything logged here up again, signed: for a parent that was linked after facts were made."""
    from services.aggregator import ingest
    from shared.db import transaction
    from shared.facts import Signer
    cfg = load_config(ctx)
    with transaction(cfg["DATABASE_URL"], "aggregator", envelope.source_from_config("aggregator", cfg),
                     Signer.from_config(cfg)) as tx:
        batches, n = ingest.resend(tx, cfg["LEVEL"])
    click.echo(f"{n} facts in {batches} signed batches queued for the level above")


@main.group("streams")
def streams_group():
    """What this instance has counted of the numbered messages it receives (shared/streams.py)."""


def _stream_positions(dsn):
    """Every receiving service's positions, with the service that keeps them."""
    import psycopg
    from shared import streams
    from shared.db import transaction
    out = []
    for schema in streams.RECEIVERS:
        try:
            with transaction(dsn, schema) as tx:
                out += [{**p, "kept_by": schema} for p in streams.positions(tx)]
        except psycopg.errors.UndefinedTable:
            pass   # a service this instance does not run
    return out


@streams_group.command("list")
@click.pass_context
def streams_list(ctx):
    """Per sender (a child below, or the parent above) and stream: the contiguous number, what is
    missing, the oldest gap's age, and resends requested and answered."""
    cfg = load_config(ctx)
    rows = _stream_positions(cfg["DATABASE_URL"])
    if not rows:
        click.echo("nothing numbered received yet")
    for p in rows:
        gap = f"{p['missing']} missing, oldest gap {p['oldest_gap_seconds']:.0f} s" if p["missing"] else \
            "nothing missing"
        click.echo(f"{p['source']:<10} {p['service']:<13} {p['stream']:<20} contiguous {p['contiguous']:<8} {gap}; "
                   f"resends requested {p['resends_requested']}, answered {p['resends_answered']}")


@streams_group.command("close-gap")
@click.option("--source", required=True, help="the sender's instance code")
@click.option("--service", required=True, help="the sender's service")
@click.option("--stream", required=True, help="facts, cases, broadcasts or answers.<street>")
@click.pass_context
def streams_close_gap(ctx, source, service, stream):
    """Stop asking for what a sender no longer has: the gap is closed and its alert stops. Do this
    only after what it held came another way (`linli facts resend` at the child, for facts)."""
    from shared import streams
    from shared.db import transaction
    cfg = load_config(ctx)
    schema = streams.receiver(stream)
    with transaction(cfg["DATABASE_URL"], schema) as tx:
        given_up = streams.close_gap(tx, source, service, stream)
    if given_up is None:
        raise click.ClickException(f"{schema} has counted nothing of {source}/{service} {stream}")
    click.echo(f"{source}/{service} {stream}: " + (f"gave up on {streams.ranges(given_up)}; counting goes on "
                                                   "from the highest number seen" if given_up else "no gap open"))

if __name__ == "__main__":
    sys.exit(main())
