"""Registry service: the street's book of nodes and people. Thin nameko entrypoints over the use cases."""
import base64

from nameko.rpc import rpc
from nameko.timer import timer
from prometheus_client import Gauge

from services.registry import importer, nodes, residents
from services.registry import party, party_import
from services.registry import holders, organizations, workers
from shared.protect import PersonalData
from shared.db import Database
from shared.errors import DomainError
from shared.inbox import idempotent
from shared.messaging import handle_event
from shared.metrics import Telemetry
from shared.outbox import OutboxRelay

command = rpc(expected_exceptions=DomainError)

NODE_INFO = Gauge("linli_node_info", "1 for each current node of this instance's hierarchy: joined on `node`, "
                  "it puts names on the node codes of other metrics (linli_rollup_headline)", ["node", "name", "level"])


def show_names(gauge, rows):
    """Make `gauge` hold exactly the current nodes: a renamed or retired node's old series goes."""
    now = {(r["code"], r["name"], r["level"]) for r in rows}
    shown = {(s.labels["node"], s.labels["name"], s.labels["level"]) for family in gauge.collect()
             for s in family.samples}
    for labels in shown - now:
        gauge.remove(*labels)
    for labels in now:
        gauge.labels(*labels).set(1)


class RegistryService:
    name = "registry"

    db = Database()
    relay = OutboxRelay()
    vault = PersonalData()
    telemetry = Telemetry()

    @property
    def instance_code(self):
        return self.db.source["node_code"]

    @timer(interval=60)
    def export_node_names(self):
        show_names(NODE_INFO, nodes.names(self.db))

    @command
    def get_node(self, code):
        return nodes.get(self.db, code)

    @command
    def list_nodes(self, query, caller):
        return nodes.list_nodes(self.db, query, caller["scope"])

    @command
    def create_node(self, data, caller):
        return nodes.create(self.db, data, self.instance_code, caller["actor"])

    @command
    def rename_node(self, code, data, caller):
        return nodes.rename(self.db, code, data, self.instance_code, caller["actor"])

    @command
    def split_node(self, code, data, caller):
        return nodes.split(self.db, code, data, self.instance_code, caller["actor"])

    @command
    def retire_node(self, code, data, caller):
        return nodes.retire(self.db, code, data, self.instance_code, caller["actor"])

    # -- residents and households (caller = {"actor", "scope"} from the gateway's token) --

    @command
    def register_resident(self, data, caller):
        return residents.register(self.db, self.vault, data, caller)

    @command
    def get_resident(self, resident_id, caller):
        return residents.get(self.db, self.vault, resident_id, caller)

    @command
    def search_residents(self, query, caller):
        return residents.search(self.db, self.vault, query, caller)

    @command
    def update_resident(self, resident_id, data, caller):
        return residents.update(self.db, self.vault, resident_id, data, caller)

    @command
    def move_resident(self, resident_id, data, caller):
        return residents.move(self.db, self.vault, resident_id, data, caller)

    @command
    def record_departure(self, resident_id, data, caller):
        return residents.leave(self.db, self.vault, resident_id, data, caller)

    @command
    def record_death(self, resident_id, data, caller):
        return residents.die(self.db, self.vault, resident_id, data, caller)

    @command
    def get_household(self, household_id, caller):
        return residents.household(self.db, self.vault, household_id, caller)

    @command
    def import_residents(self, data_b64, mode, caller):
        """Bulk import; the CSV travels base64-encoded because RPC payloads are JSON."""
        return importer.import_residents(self.db, self.vault, base64.b64decode(data_b64), mode, caller)

    @command
    def audit_log(self, query, caller):
        return residents.audit_log(self.db, query, caller)

    # -- party members under dual management (caller as for residents) --

    @command
    def create_party_org(self, data, caller):
        return party.create_org(self.db, data, caller)

    @command
    def party_org_tree(self, query, caller):
        return party.org_tree(self.db, query, caller)

    @command
    def register_party_member(self, data, caller):
        return party.register(self.db, data, caller)

    @command
    def get_party_member(self, resident_id, caller):
        return party.get(self.db, resident_id, caller)

    @command
    def search_party_members(self, query, caller):
        return party.search(self.db, query, caller)

    @command
    def report_party_member(self, resident_id, data, caller):
        return party.report(self.db, resident_id, data, caller)

    @command
    def withdraw_party_member(self, resident_id, data, caller):
        return party.withdraw(self.db, resident_id, data, caller)

    @command
    def place_party_member(self, resident_id, data, caller):
        return party.place(self.db, resident_id, data, caller)

    @command
    def party_report_rate(self, query, caller):
        return party.report_rate(self.db, query, caller)

    @command
    def import_party_members(self, data_b64, mode, caller):
        """Bulk import through the member use cases; the CSV travels base64-encoded as for residents."""
        return party_import.import_party_members(self.db, self.vault, base64.b64decode(data_b64), mode, caller)

    @handle_event("registry", "resident_moved")
    @idempotent
    def on_resident_moved(self, env):
        """Consumed from our own bus so that residents.move needs no party code; leave and death are in-transaction."""
        party.residence_moved(self.db, env["payload"]["id"], "registry:resident_moved")

    # -- social organisations, volunteer teams and community workers (caller as for residents) --

    @command
    def register_organization(self, data, caller):
        return organizations.register(self.db, data, caller)

    @command
    def get_organization(self, organization_id, caller):
        return organizations.get(self.db, organization_id, caller)

    @command
    def search_organizations(self, query, caller):
        return organizations.search(self.db, query, caller)

    @command
    def update_organization(self, organization_id, data, caller):
        return organizations.update(self.db, organization_id, data, caller)

    @command
    def change_organization_status(self, organization_id, data, caller):
        return organizations.change_status(self.db, organization_id, data, caller)

    @command
    def join_organization(self, organization_id, data, caller):
        return organizations.join(self.db, organization_id, data, caller)

    @command
    def leave_organization(self, organization_id, resident_id, data, caller):
        return organizations.leave(self.db, organization_id, resident_id, data, caller)

    @command
    def contract_project(self, organization_id, data, caller):
        return organizations.contract(self.db, organization_id, data, caller)

    @command
    def appoint_worker(self, data, caller):
        return workers.appoint(self.db, self.vault, data, caller)

    @command
    def get_worker(self, worker_id, caller):
        return workers.get(self.db, self.vault, worker_id, caller)

    @command
    def search_workers(self, query, caller):
        return workers.search(self.db, self.vault, query, caller)

    @command
    def assess_worker(self, worker_id, data, caller):
        return workers.assess(self.db, self.vault, worker_id, data, caller)

    @command
    def record_worker_departure(self, worker_id, data, caller):
        return workers.leave(self.db, self.vault, worker_id, data, caller)

    # -- for the points and consultation services --

    @command
    def account_holder(self, kind, ref_id, caller):
        return holders.account_holder(self.db, self.vault, kind, ref_id, caller)

    @command
    def account_holders(self, resident_ids, caller):
        return holders.account_holders(self.db, self.vault, resident_ids, caller)

    @command
    def names_in(self, text, under):
        return holders.names_in(self.db, text, under)

    @command
    def contacts(self, resident_ids):
        return holders.contacts(self.db, self.vault, resident_ids)

    @command
    def residents_by_handover_keys(self, keys):
        return holders.residents_by_handover_keys(self.db, keys)
