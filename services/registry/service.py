"""Registry service: the street's book of nodes (and, later, people). Thin nameko entrypoints."""
from nameko.rpc import rpc

from services.registry import nodes
from shared.db import Database
from shared.errors import DomainError
from shared.metrics import Telemetry
from shared.outbox import OutboxRelay

command = rpc(expected_exceptions=DomainError)


class RegistryService:
    name = "registry"

    db = Database()
    relay = OutboxRelay()
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
