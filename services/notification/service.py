"""Notification service, first part: subscribers in step with the registry, and message templates.

Deliveries through channel adapters, triggers from other services' events, targeted notices and
emergency broadcasts build on these (issue 6); `rules.py` already holds their pure rules.
"""
from nameko.rpc import rpc

from services.notification import store, subscribers, templates
from shared.db import Database
from shared.errors import DomainError, NotFound
from shared.inbox import idempotent
from shared.messaging import handle_event
from shared.metrics import Telemetry
from shared.outbox import OutboxRelay

command = rpc(expected_exceptions=DomainError)


class NotificationService:
    name = "notification"

    db = Database()
    relay = OutboxRelay()
    telemetry = Telemetry()

    # -- subscribers follow the registry --------------------------------------------------------

    @handle_event("registry", "resident_registered")
    @idempotent
    def on_resident_registered(self, env):
        subscribers.apply_resident(self.db, env["payload"])

    @handle_event("registry", "resident_updated")
    @idempotent
    def on_resident_updated(self, env):
        subscribers.apply_resident(self.db, env["payload"])

    @handle_event("registry", "resident_moved")
    @idempotent
    def on_resident_moved(self, env):
        subscribers.apply_resident(self.db, env["payload"])

    @handle_event("registry", "resident_left")
    @idempotent
    def on_resident_left(self, env):
        subscribers.apply_resident(self.db, env["payload"])

    @handle_event("registry", "resident_died")
    @idempotent
    def on_resident_died(self, env):
        subscribers.apply_resident(self.db, env["payload"])

    @handle_event("registry", "residents_imported")
    @idempotent
    def on_residents_imported(self, env):
        subscribers.apply_import(self.db, env["payload"])

    @handle_event("registry", "party_member_reported")
    @idempotent
    def on_party_member_reported(self, env):
        subscribers.apply_role(self.db, "party_member_reported", env["payload"])

    @handle_event("registry", "party_member_withdrawn")
    @idempotent
    def on_party_member_withdrawn(self, env):
        subscribers.apply_role(self.db, "party_member_withdrawn", env["payload"])

    @command
    def get_subscriber(self, resident_id):
        row = self.db.one(store.SUBSCRIBER, (resident_id,))
        if row is None:
            raise NotFound(f"no subscriber {resident_id}", {"resident_id": [f"no subscriber {resident_id}"]})
        return row

    @command
    def reach(self, target):
        return subscribers.reach(self.db, target)

    # -- templates ------------------------------------------------------------------------------

    @command
    def save_template(self, code, data, caller):
        return templates.save(self.db, code, data, caller["actor"])

    @command
    def get_template(self, code):
        return templates.get(self.db, code)
