"""Notification service: subscribers, templates, triggers, targeted notices, the inbox and emergency broadcasts.

Thin entrypoints over the modules beside it. `caller` is {"actor", "scope", "role", ...} from the
gateway's token; a resident's token also names its `resident_id`, a leader's its `organization_id`.
Deliveries go out from the sender's own green thread (sender.DeliveryWorker), woken when a notice
commits; timers bundle the daily digests and close broadcasts that have been sent.
"""
import logging
from datetime import datetime, timezone

from nameko.dependency_providers import Config
from nameko.rpc import rpc
from nameko.timer import timer
from prometheus_client import Counter

from services.notification import broadcasts, digests, fanout, notices, store, subscribers, templates, triggers
from services.notification.sender import DeliveryWorker
from shared import facts, streams
from shared.db import Database
from shared.errors import DomainError, NotFound, ValidationFailed
from shared.inbox import idempotent
from shared.messaging import DIRECTIVES, consume, handle_event
from shared.metrics import Telemetry
from shared.outbox import OutboxRelay
from shared.rpc import RpcProxy  # a deadline, and never called inside a transaction
from shared.protect import PersonalData
from shared import clock

log = logging.getLogger(__name__)
command = rpc(expected_exceptions=DomainError)
DIRECTIVES_REJECTED = Counter("linli_notification_directives_rejected_total",
                              "Directives from above refused (no parent key, bad signature, malformed)")
DIRECTIVE_ROUTING_KEY = broadcasts.DIRECTIVE_ROUTING_KEY
PHONE_BATCHES_PER_RUN = 20


def _now():
    return datetime.now(timezone.utc)


class NotificationService:
    name = "notification"

    db = Database()
    relay = OutboxRelay()
    telemetry = Telemetry()
    config = Config()
    vault = PersonalData()
    sender = DeliveryWorker()
    registry = RpcProxy("registry")

    @property
    def digest_hour(self):
        return int(self.config.get("DIGEST_HOUR", 19))

    def nodes(self, code):
        return self.registry.get_node(code)

    def organizations(self, organization_id, caller):
        return self.registry.get_organization(organization_id, caller)

    def contacts(self, ids):
        return self.registry.contacts(ids)

    # -- subscribers follow the registry --------------------------------------------------------

    def _resident(self, env):
        subscribers.apply_resident(self.db, env["payload"])
        if subscribers.phone_changed(env) and env["payload"]["status"] == "active":
            subscribers.request_phones(self.db, [env["payload"]["id"]])

    @handle_event("registry", "resident_registered")
    @idempotent
    def on_resident_registered(self, env):
        self._resident(env)

    @handle_event("registry", "resident_updated")
    @idempotent
    def on_resident_updated(self, env):
        self._resident(env)

    @handle_event("registry", "resident_moved")
    @idempotent
    def on_resident_moved(self, env):
        self._resident(env)

    @handle_event("registry", "resident_left")
    @idempotent
    def on_resident_left(self, env):
        self._resident(env)

    @handle_event("registry", "resident_died")
    @idempotent
    def on_resident_died(self, env):
        self._resident(env)

    @handle_event("registry", "residents_imported")
    @idempotent
    def on_residents_imported(self, env):
        subscribers.apply_import(self.db, env["payload"])
        subscribers.request_phones(self.db, [r["id"] for r in env["payload"]["residents"] if r["status"] == "active"])

    @handle_event("registry", "party_member_registered")
    @idempotent
    def on_party_member_registered(self, env):
        subscribers.apply_role(self.db, env)

    @handle_event("registry", "party_member_reported")
    @idempotent
    def on_party_member_reported(self, env):
        subscribers.apply_role(self.db, env)

    @handle_event("registry", "party_member_withdrawn")
    @idempotent
    def on_party_member_withdrawn(self, env):
        subscribers.apply_role(self.db, env)

    @handle_event("registry", "worker_appointed")
    @idempotent
    def on_worker_appointed(self, env):
        subscribers.apply_role(self.db, env)

    @handle_event("registry", "worker_left")
    @idempotent
    def on_worker_left(self, env):
        subscribers.apply_role(self.db, env)

    @handle_event("registry", "organization_member_joined")
    @idempotent
    def on_organization_member_joined(self, env):
        subscribers.apply_membership(self.db, env)

    @handle_event("registry", "organization_member_left")
    @idempotent
    def on_organization_member_left(self, env):
        subscribers.apply_membership(self.db, env)

    # -- triggers from the other services' events -------------------------------------------------

    @handle_event("consultation", "meeting_scheduled")
    @idempotent
    def on_meeting_scheduled(self, env):
        triggers.meeting(self.db, env, _now(), self.digest_hour)

    @handle_event("consultation", "meeting_moved")
    @idempotent
    def on_meeting_moved(self, env):
        triggers.meeting(self.db, env, _now(), self.digest_hour)

    @handle_event("consultation", "meeting_cancelled")
    @idempotent
    def on_meeting_cancelled(self, env):
        triggers.meeting(self.db, env, _now(), self.digest_hour)

    @handle_event("consultation", "matter_screened")
    @idempotent
    def on_matter_screened(self, env):
        triggers.matter(self.db, env, _now(), self.digest_hour)

    @handle_event("consultation", "result_published")
    @idempotent
    def on_result_published(self, env):
        triggers.matter(self.db, env, _now(), self.digest_hour)

    @handle_event("consultation", "matter_settled")
    @idempotent
    def on_matter_settled(self, env):
        triggers.matter(self.db, env, _now(), self.digest_hour)

    @handle_event("points", "points_posted")
    @idempotent
    def on_points_posted(self, env):
        triggers.points(self.db, [env], _now(), self.digest_hour)

    @handle_event("points", "points_redeemed")
    @idempotent
    def on_points_redeemed(self, env):
        triggers.points(self.db, [env], _now(), self.digest_hour)

    # -- directives from above ------------------------------------------------------------------

    @consume(DIRECTIVES, DIRECTIVE_ROUTING_KEY)
    def on_directive(self, body):
        """A broadcast directive from the level above, or the head of its broadcasts stream. Every
        one is counted in that stream (shared/streams.py), also one for another area, which is then
        left alone: each child gets all of its parent's directives, so its sequence has no holes."""
        own = self.db.source["node_code"]
        head = streams.is_head(body)
        sender = streams.head_sender(body) if head else body.get("issuer") if isinstance(body, dict) else None
        if sender == own:
            return  # our own directive (or head) coming back: nothing to do here
        directive = body.get("directive") if isinstance(body, dict) else None
        prefix = str((directive or {}).get("prefix") or "")
        elsewhere = not head and not (own.startswith(prefix) or prefix.startswith(own))
        key = self.config.get("PARENT_KEY")
        why = None
        if not key:
            if elsewhere:
                return  # an instance that takes no directives needn't say so about others' areas
            why = "no PARENT_KEY is configured: this instance takes no directives"
        elif not isinstance(body, dict) or not facts.verify(body, key):
            why = "the directive's signature does not verify with PARENT_KEY"
        if why:
            DIRECTIVES_REJECTED.inc()
            log.warning("directive rejected", extra={"why": why})
            raise ValidationFailed(why, {"signature": [why]})  # dead-lettered after MAX_DELIVERIES
        streams.count(self.db, sender, "notification", streams.BROADCASTS_STREAM, body)
        if head or elsewhere:
            return
        try:
            broadcasts.start_from_directive(self.db, self.nodes, body.get("directive") or {},
                                            self.db.source["node_code"], _now(), self.digest_hour)
        except ValidationFailed:
            DIRECTIVES_REJECTED.inc()
            raise

    # -- timers ---------------------------------------------------------------------------------

    @timer(interval=60)
    def bundle_digests(self):
        made, released = digests.bundle(self.db)
        if made or released:
            log.info("digests bundled", extra={"digests": made, "released": released})

    @timer(interval=10)
    def deliver_late(self):
        added, expired = fanout.late(self.db, _now(), self.digest_hour)
        if added or expired:
            log.info("notices for late arrivals", extra={"deliveries": added, "given_up": expired})

    @timer(interval=2)
    def sync_phones(self):
        # Each batch asks the registry with nothing held and commits on its own, so no batch makes the
        # worker run again. A run stops after PHONE_BATCHES_PER_RUN batches (the next tick goes on):
        # the worker keeps every answer it was given until it ends (shared/db.py), phones included.
        for _ in range(PHONE_BATCHES_PER_RUN):
            if subscribers.sync_phones(self.db, self.vault, self.contacts) < subscribers.PHONE_BATCH:
                return
            self.db.finish(commit=True)

    @timer(interval=5)
    def keep_streams(self):
        """Completeness of the directives from above (shared/streams.py)."""
        streams.keep(self.db, self.config)

    @timer(interval=5)
    def close_broadcasts(self):
        broadcasts.close_finished(self.db)

    @timer(interval=10)
    def report_acknowledgements(self):
        broadcasts.report_acknowledgements(self.db, clock.today())

    # -- subscribers ----------------------------------------------------------------------------

    @command
    def get_subscriber(self, resident_id, caller=None):
        if caller is not None:
            return subscribers.subscriber(self.db, resident_id, caller)
        row = self.db.one(store.SUBSCRIBER, (resident_id,))
        if row is None:
            raise NotFound(f"no subscriber {resident_id}", {"resident_id": [f"no subscriber {resident_id}"]})
        return row

    @command
    def reach(self, target):
        return subscribers.reach(self.db, target, nodes=self.nodes)

    @command
    def get_channels(self, resident_id, caller):
        return subscribers.channels(self.db, self.vault, resident_id, caller)

    @command
    def set_channel(self, resident_id, data, caller):
        return subscribers.set_channel(self.db, self.vault, resident_id, data, caller,
                                       allow=self.config.get("WEBHOOK_ALLOW_NETWORKS") or ())

    @command
    def remove_channel(self, resident_id, channel, caller):
        return subscribers.remove_channel(self.db, self.vault, resident_id, channel, caller)

    @command
    def get_preferences(self, resident_id, caller):
        return subscribers.preferences(self.db, resident_id, caller)

    @command
    def set_preferences(self, resident_id, data, caller):
        return subscribers.set_preferences(self.db, resident_id, data, caller)

    @command
    def inbox(self, resident_id, query, caller):
        return notices.inbox(self.db, resident_id, query, caller)

    @command
    def mark_read(self, resident_id, delivery_id, caller):
        return notices.mark_read(self.db, resident_id, delivery_id, caller)

    # -- a resident's own (their token's resident_id) ----------------------------------------------

    @command
    def my_inbox(self, query, caller):
        return notices.inbox(self.db, subscribers.own(caller), query, caller)

    @command
    def my_mark_read(self, delivery_id, caller):
        return notices.mark_read(self.db, subscribers.own(caller), delivery_id, caller)

    @command
    def my_preferences(self, caller):
        return subscribers.preferences(self.db, subscribers.own(caller), caller)

    @command
    def set_my_preferences(self, data, caller):
        return subscribers.set_preferences(self.db, subscribers.own(caller), data, caller)

    @command
    def my_channels(self, caller):
        return subscribers.channels(self.db, self.vault, subscribers.own(caller), caller)

    @command
    def set_my_channel(self, data, caller):
        return subscribers.set_channel(self.db, self.vault, subscribers.own(caller), data, caller,
                                       allow=self.config.get("WEBHOOK_ALLOW_NETWORKS") or ())

    @command
    def remove_my_channel(self, channel, caller):
        return subscribers.remove_channel(self.db, self.vault, subscribers.own(caller), channel, caller)

    # -- notices and receipts -------------------------------------------------------------------

    @command
    def send_notice(self, data, caller):
        return notices.targeted(self.db, self.nodes, data, caller, _now(), self.digest_hour)

    @command
    def send_organization_notice(self, organization_id, data, caller):
        return notices.organization_notice(self.db, self.organizations, organization_id, data, caller, _now(),
                                           self.digest_hour)

    @command
    def get_notice(self, notice_id, caller):
        return notices.get(self.db, notice_id, caller)

    @command
    def receipts(self, provider, body, signature):
        return notices.receipts(self.db, self.config.get("NOTIFICATION_PROVIDERS") or {}, provider, body, signature)

    # -- emergency broadcasts -------------------------------------------------------------------

    @command
    def create_broadcast(self, data, caller):
        return broadcasts.create(self.db, self.nodes, data, caller)

    @command
    def edit_broadcast(self, broadcast_id, data, caller):
        return broadcasts.edit(self.db, self.nodes, broadcast_id, data, caller)

    @command
    def submit_broadcast(self, broadcast_id, caller):
        return broadcasts.submit(self.db, broadcast_id, caller)

    @command
    def approve_broadcast(self, broadcast_id, caller):
        return broadcasts.approve(self.db, self.nodes, broadcast_id, caller, _now(), self.digest_hour)

    @command
    def reject_broadcast(self, broadcast_id, data, caller):
        return broadcasts.reject(self.db, broadcast_id, data, caller)

    @command
    def cancel_broadcast(self, broadcast_id, data, caller):
        return broadcasts.cancel(self.db, broadcast_id, data, caller)

    @command
    def get_broadcast(self, broadcast_id, caller):
        return broadcasts.get(self.db, broadcast_id, caller)

    @command
    def list_broadcasts(self, query, caller):
        return broadcasts.list_broadcasts(self.db, query, caller, nodes=self.nodes)

    @command
    def broadcast_deliveries(self, broadcast_id, query, caller):
        return broadcasts.deliveries(self.db, broadcast_id, query, caller)

    # -- templates ------------------------------------------------------------------------------

    @command
    def save_template(self, code, data, caller):
        return templates.save(self.db, code, data, caller["actor"])

    @command
    def get_template(self, code):
        return templates.get(self.db, code)
