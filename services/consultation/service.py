"""Consultation service: "three up, three down" from a resident's matter to a published, rated result.

Thin nameko entrypoints over matters.py (一上一下), deliberation.py (二上二下),
decisions.py (三上三下) and figures.py. `caller` is {"actor", "scope", "role"} from
the gateway's token; the registry is asked by RPC whether a resident named as
raiser, backer, participant or rater is on the register within that scope.
"""

from nameko.dependency_providers import Config
from nameko.rpc import rpc
from nameko.timer import timer
from prometheus_client import Counter

from services.consultation import cases, decisions, deliberation, figures, matters
from shared.db import Database
from shared.errors import DomainError
from shared.metrics import Telemetry
from shared.messaging import CASES, DIRECTIVES, consume
from shared.outbox import OutboxRelay
from shared import streams
from shared.rpc import RpcProxy  # a deadline, and never called inside a transaction
from shared import clock

command = rpc(expected_exceptions=DomainError)
CASES_REJECTED = Counter("linli_consultation_cases_rejected_total",
                         "Cases from below or answers from above refused (signature, another street's matter)")


def now():
    return clock.now()


class ConsultationService:
    name = "consultation"

    db = Database()
    relay = OutboxRelay()
    telemetry = Telemetry()
    registry = RpcProxy("registry")
    aggregator = RpcProxy("aggregator")
    config = Config()

    def people(self, resident_id, caller):
        return self.registry.account_holder("person", resident_id, caller)

    def names_in(self, text, street):
        """Whether the text names a resident of the street (the registry says only whether, never who)."""
        return self.registry.names_in(text, street)["found"]

    def nodes(self, code):
        """A node as the registry has it (NotFound if it holds none): what a matter, item or meeting names
        must be live, and what a query reads under must exist."""
        return self.registry.get_node(code)

    def people_of(self, resident_ids, caller):
        """Many residents in one question (a roster): each question asked in a transaction costs a re-run."""
        return self.registry.account_holders(resident_ids, caller)

    # -- matters between levels ---------------------------------------------------------------

    @consume(CASES, cases.UP_KEY)
    def on_case(self, body):
        """At a district: a matter escalated by a street below (a street ignores its own cases here)."""
        if self.db.source["level"] == "street":
            return
        try:
            cases.receive(self.db, body, self.aggregator.trusted_key)
        except cases.Rejected:
            CASES_REJECTED.inc()
            raise

    @consume(DIRECTIVES, f"{cases.DOWN_PREFIX}.*")
    def on_case_answer(self, body):
        """At a street: the district's answer to a matter it escalated."""
        if self.db.source["level"] != "street":
            return
        try:
            matters.answered_from_above(self.db, body, self.config.get("PARENT_KEY"), now())
        except cases.Rejected:
            CASES_REJECTED.inc()
            raise

    @timer(interval=5)
    def keep_streams(self):
        """Completeness of cases from below (at a district) and answers from above (at a street)."""
        streams.keep(self.db, self.config)

    @command
    def stream_positions(self):
        """What this service has counted of each sender's numbered stream (GET /api/v1/children)."""
        return streams.positions(self.db)

    @command
    def list_cases(self, query, caller):
        return cases.list_cases(self.db, query, caller)

    @command
    def answer_case(self, case_id, data, caller):
        return cases.answer(self.db, case_id, data, caller)

    # -- matters ------------------------------------------------------------------------------

    @command
    def raise_matter(self, data, caller):
        return matters.raise_matter(self.db, self.people, data, caller, now(), nodes=self.nodes)

    @command
    def similar_matters(self, query, caller):
        return matters.similar(self.db, query, caller, nodes=self.nodes)

    @command
    def get_matter(self, matter_id, caller):
        return matters.get(self.db, matter_id, caller, now())

    @command
    def search_matters(self, query, caller):
        return matters.search(self.db, query, caller, now(), nodes=self.nodes)

    @command
    def back_matter(self, matter_id, data, caller):
        return matters.back(self.db, self.people, matter_id, data, caller, now())

    @command
    def screen_matter(self, matter_id, data, caller):
        return matters.screen(self.db, matter_id, data, caller, now(), self.names_in)

    @command
    def rate_matter(self, matter_id, data, caller):
        return matters.rate(self.db, self.people, matter_id, data, caller, now())

    @command
    def settle_matter(self, matter_id, data, caller):
        return matters.settle(self.db, matter_id, data, caller, now())

    @command
    def set_deadline(self, data, caller):
        return matters.set_deadline(self.db, data, caller)

    # -- deliberation ---------------------------------------------------------------------------

    @command
    def create_agenda_item(self, data, caller):
        return deliberation.create_item(self.db, data, caller, now(), nodes=self.nodes)

    @command
    def get_agenda_item(self, item_id, caller):
        return deliberation.item(self.db, item_id, caller, now())

    @command
    def add_option(self, item_id, data, caller):
        return deliberation.add_option(self.db, item_id, data, caller, now())

    @command
    def schedule_meeting(self, data, caller):
        return deliberation.schedule(self.db, self.people_of, data, caller, now(), nodes=self.nodes)

    @command
    def get_meeting(self, meeting_id, caller):
        return deliberation.get(self.db, meeting_id, caller)

    @command
    def move_meeting(self, meeting_id, data, caller):
        return deliberation.move(self.db, meeting_id, data, caller, now())

    @command
    def open_meeting(self, meeting_id, data, caller):
        return deliberation.open_meeting(self.db, meeting_id, data, caller)

    @command
    def cast_vote(self, meeting_id, data, caller):
        return deliberation.vote(self.db, meeting_id, data, caller)

    @command
    def tally(self, meeting_id, query, caller):
        return deliberation.tally_of(self.db, meeting_id, query, caller)

    @command
    def close_meeting(self, meeting_id, data, caller):
        return deliberation.close(self.db, meeting_id, data, caller, now())

    @command
    def cancel_meeting(self, meeting_id, data, caller):
        return deliberation.cancel(self.db, meeting_id, data, caller)

    # -- decisions ------------------------------------------------------------------------------

    @command
    def decide(self, data, caller):
        return decisions.decide(self.db, data, caller, now())

    @command
    def get_decision(self, decision_id, caller):
        return decisions.get(self.db, decision_id, caller)

    @command
    def add_task(self, decision_id, data, caller):
        return decisions.add_task(self.db, decision_id, data, caller)

    @command
    def task_progress(self, task_id, data, caller):
        return decisions.progress(self.db, task_id, data, caller)

    @command
    def publish_result(self, decision_id, data, caller):
        return decisions.publish(self.db, decision_id, data, caller, now())

    # -- figures and the public view --------------------------------------------------------------

    @command
    def figures(self, query, caller):
        return figures.figures(self.db, query, caller, now(), nodes=self.nodes)

    @command
    def public_results(self, query):
        return figures.public_results(self.db, query, nodes=self.nodes)
