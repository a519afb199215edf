"""Points service: service-point rules, records, the ledger, redemptions and evaluation. Thin entrypoints.

`caller` is {"actor", "scope", "role", "organization_id"} from the gateway's token.
The registry is asked, by RPC, who an account belongs to; its events keep the
accounts in step (a report opens one, a move follows the person, leaving the
street hands the balance over, a death freezes it).
"""
import logging

from nameko.dependency_providers import Config
from nameko.rpc import rpc
from nameko.timer import timer
from prometheus_client import Counter

from services.points import accounts, catalogue, evaluation, handover, ledger, records, redemptions
from shared.db import Database
from shared.errors import DomainError
from shared.inbox import idempotent
from shared.messaging import HANDOVERS, consume, handle_event
from shared.metrics import Telemetry
from shared.outbox import OutboxRelay
from shared.rpc import RpcProxy  # a deadline, and never called inside a transaction

log = logging.getLogger(__name__)
command = rpc(expected_exceptions=DomainError)
HANDOVERS_REJECTED = Counter("linli_points_handovers_rejected_total",
                             "Handover messages refused (bad signature, unknown sender, malformed)")


class PointsService:
    name = "points"

    db = Database()
    relay = OutboxRelay()
    telemetry = Telemetry()
    config = Config()
    registry = RpcProxy("registry")

    @property
    def instance_code(self):
        return self.db.source["node_code"]

    @property
    def pending_days(self):
        return int(self.config.get("POINTS_PENDING_DAYS", 30))

    def holders(self, kind, ref_id, caller):
        return self.registry.account_holder(kind, ref_id, caller)

    def nodes(self, code):
        """A node as the registry has it (NotFound if it holds none): a listing's `under` must exist."""
        return self.registry.get_node(code)

    def holders_of(self, resident_ids, caller):
        """Many residents in one question: each question asked in a transaction costs a re-run."""
        return self.registry.account_holders(resident_ids, caller)

    def find_by_handover_keys(self, keys):
        return {k: int(v) for k, v in self.registry.residents_by_handover_keys(keys).items()}

    # -- catalogue ------------------------------------------------------------------------------

    @command
    def list_categories(self, query):
        return catalogue.list_categories(self.db, query)

    @command
    def get_category(self, code):
        return catalogue.get_category(self.db, code)

    @command
    def create_category(self, data, caller):
        return catalogue.create_category(self.db, data, caller)

    @command
    def add_rule(self, code, data, caller):
        return catalogue.add_rule(self.db, code, data, caller)

    @command
    def set_category(self, code, data, caller):
        return catalogue.set_category(self.db, code, data, caller)

    @command
    def list_rewards(self, query):
        return catalogue.list_rewards(self.db, query)

    @command
    def create_reward(self, data, caller):
        return catalogue.create_reward(self.db, data, caller)

    @command
    def update_reward(self, reward_id, data, caller):
        return catalogue.update_reward(self.db, reward_id, data, caller)

    # -- accounts -------------------------------------------------------------------------------

    @command
    def open_account(self, data, caller):
        return accounts.open_account(self.db, self.holders, data, caller)

    @command
    def get_account(self, account_id, caller):
        return accounts.get(self.db, account_id, caller)

    @command
    def search_accounts(self, query, caller):
        return accounts.search(self.db, query, caller, nodes=self.nodes)

    @command
    def statement(self, account_id, query, caller):
        return accounts.statement(self.db, account_id, query, caller)

    @command
    def trial_balance(self):
        return {k: int(v) for k, v in ledger.trial_balance(self.db).items()}

    # -- service records ------------------------------------------------------------------------

    @command
    def create_record(self, data, caller):
        return records.create(self.db, self.holders, data, caller, self.pending_days)

    @command
    def get_record(self, record_id, caller):
        return records.get(self.db, record_id, caller)

    @command
    def search_records(self, query, caller):
        return records.search(self.db, query, caller, nodes=self.nodes)

    @command
    def verify_record(self, record_id, data, caller):
        return records.verify(self.db, record_id, data, caller)

    @command
    def verify_records(self, data, caller):
        return records.verify_batch(self.db, data, caller)

    @command
    def void_record(self, record_id, data, caller):
        return records.void(self.db, record_id, data, caller)

    @command
    def reverse_record(self, record_id, data, caller):
        return records.reverse(self.db, record_id, data, caller)

    @timer(interval=60)
    def expire_pending(self):
        expired = records.expire_due(self.db)
        if expired:
            log.info("pending service records expired", extra={"count": expired})

    # -- redemptions ----------------------------------------------------------------------------

    @command
    def request_redemption(self, data, caller):
        return redemptions.request(self.db, data, caller, self.instance_code)

    @command
    def fulfil_redemption(self, redemption_id, data, caller):
        return redemptions.fulfil(self.db, redemption_id, data, caller, self.instance_code)

    @command
    def cancel_redemption(self, redemption_id, data, caller):
        return redemptions.cancel(self.db, redemption_id, data, caller, self.instance_code)

    @command
    def get_redemption(self, redemption_id, caller):
        return redemptions.get(self.db, redemption_id, caller)

    @command
    def search_redemptions(self, query, caller):
        return redemptions.search(self.db, query, caller, nodes=self.nodes)

    # -- evaluation -----------------------------------------------------------------------------

    @command
    def evaluation(self, query, caller):
        return evaluation.report(self.db, query, caller, nodes=self.nodes)

    @command
    def take_evaluation(self, data, caller):
        return evaluation.snapshot(self.db, data, caller, self.instance_code)

    # -- following the registry -----------------------------------------------------------------
    # Each handler re-reads the holder from the registry rather than trusting the event's copy, so
    # events arriving out of order still leave the account as the registry has it now.

    @handle_event("registry", "party_member_reported")
    @idempotent
    def on_party_member_reported(self, env):
        accounts.open_for_party_member(self.db, self.holders, env["payload"]["resident_id"], self.instance_code)

    def _refresh(self, resident_id):
        accounts.refresh(self.db, self.holders, resident_id, self.instance_code)

    @handle_event("registry", "party_member_placed")
    @idempotent
    def on_party_member_placed(self, env):
        self._refresh(env["payload"]["resident_id"])

    @handle_event("registry", "party_member_withdrawn")
    @idempotent
    def on_party_member_withdrawn(self, env):
        self._refresh(env["payload"]["resident_id"])

    @handle_event("registry", "party_member_relocated")
    @idempotent
    def on_party_member_relocated(self, env):
        self._refresh(env["payload"]["resident_id"])

    @handle_event("registry", "organization_member_joined")
    @idempotent
    def on_organization_member_joined(self, env):
        self._refresh(env["payload"]["resident_id"])

    @handle_event("registry", "organization_member_left")
    @idempotent
    def on_organization_member_left(self, env):
        self._refresh(env["payload"]["resident_id"])

    @handle_event("registry", "resident_moved")
    @idempotent
    def on_resident_moved(self, env):
        self._refresh(env["payload"]["id"])

    @handle_event("registry", "resident_registered")
    @idempotent
    def on_resident_registered(self, env):
        """Someone new on the register may be the person a waiting handover is for."""
        holder = self.holders("person", env["payload"]["id"], accounts.system_caller(self.instance_code))
        handover.match(self.db, self.find_by_handover_keys, self.holders_of, self.instance_code,
                       [holder["handover_key"]])

    @handle_event("registry", "resident_left")
    @idempotent
    def on_resident_left(self, env):
        handover.hand_over(self.db, self.holders, env["payload"]["id"], self.instance_code, self.db.signer,
                           "居民迁出本街道")

    @handle_event("registry", "resident_died")
    @idempotent
    def on_resident_died(self, env):
        accounts.freeze(self.db, env["payload"]["id"], "居民去世")

    # -- balances from other streets ------------------------------------------------------------

    @consume(HANDOVERS, handover.ROUTING_KEY)
    def on_handover(self, body):
        try:
            handover.receive(self.db, self.find_by_handover_keys, self.holders_of, body,
                             self.config.get("PEER_KEYS") or {}, self.instance_code, self.db.signer.public_key)
        except handover.Rejected as exc:
            HANDOVERS_REJECTED.inc()
            log.warning("handover rejected", extra={"why": exc.message, "fields": exc.fields})
            raise

    @timer(interval=60)
    def match_handovers(self):
        handover.match(self.db, self.find_by_handover_keys, self.holders_of, self.instance_code)
