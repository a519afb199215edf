"""Registry service: the street's book of nodes and people. Thin nameko entrypoints over the use cases."""
import base64

from nameko.rpc import rpc

from services.registry import importer, nodes, residents
from services.registry.protect import PersonalData
from shared.db import Database
from shared.errors import DomainError
from shared.metrics import Telemetry
from shared.outbox import OutboxRelay

command = rpc(expected_exceptions=DomainError)


class RegistryService:
    name = "registry"

    db = Database()
    relay = OutboxRelay()
    vault = PersonalData()
    telemetry = Telemetry()

    @property
    def instance_code(self):
        return self.db.source["node_code"]

    @command
    def get_node(self, code):
        return nodes.get(self.db, code)

    @command
    def list_nodes(self, query, default_under):
        return nodes.list_nodes(self.db, query, default_under)

    @command
    def create_node(self, data, actor):
        return nodes.create(self.db, data, self.instance_code, actor)

    @command
    def rename_node(self, code, data, actor):
        return nodes.rename(self.db, code, data, self.instance_code, actor)

    @command
    def split_node(self, code, data, actor):
        return nodes.split(self.db, code, data, self.instance_code, actor)

    @command
    def retire_node(self, code, data, actor):
        return nodes.retire(self.db, code, data, self.instance_code, actor)

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
    def audit_log(self, query):
        return residents.audit_log(self.db, query)
