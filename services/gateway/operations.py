"""The operator's view over HTTP (declared in services/gateway/api.py): the instance's health, and the API
tokens of its scope, listed and revoked.

The health is read as `linli outbox status` reads it (shared/instance.py): the outboxes and migrations from
the instance's database, queues and federation links from the broker's management API, and the keys
from the aggregator, which holds this instance's and its children's. A part that does not answer is shown
as such; the rest of the view still comes.
"""
import logging
from datetime import datetime, timezone

from services.gateway import accounts, store
from services.gateway.declared import BY_NAME
from services.gateway.http import api
from services.gateway.routes import reply
from shared import instance
from shared.errors import Conflict, DomainError, Forbidden, NotFound, load
from shared.rpc import OutcomeUnknown
from services.gateway import schemas as s

log = logging.getLogger(__name__)
ADMIN_REVOKES = frozenset({*accounts.MANAGED_ROLES, "department_feed", "resident"})
# The view waits this long for the aggregator, and shows what it has without it.
ASK_WITHIN = 5


def token_view(row):
    state = "revoked" if row["revoked_at"] else "expired" if row["expired"] else "active"
    return {**row, "state": state}


class OperatorRoutes:

    @api("GET", "/api/v1/tokens")
    def list_tokens(self, request):
        principal = self._principal(request, "accounts:admin")
        rows = self.db.all(store.TOKENS_UNDER, (principal.node_prefix,))
        return reply(BY_NAME["list_tokens"], [token_view(r) for r in rows])

    @api("POST", "/api/v1/tokens/<string:token_id>/revoke")
    def revoke_token(self, request, token_id):
        principal = self._principal(request, "accounts:admin")
        token_id = load(s.TokenPathSchema, {"token_id": token_id})["token_id"]
        row = self.db.one(store.TOKEN_FOR_UPDATE, (token_id,))
        if row is None or not row["node_prefix"].startswith(principal.node_prefix):
            raise NotFound(f"no token {token_id}", {"token_id": ["no such token in your scope"]})
        if principal.kind == "token" and principal.token_id == token_id:
            raise Conflict("a token cannot revoke itself", {"token_id": ["use another token or the console"]})
        # As with accounts: a street admin keeps the tokens of the roles the console manages, the departments'
        # feeds and residents' own; an admin's or operator's token is revoked by an operator or `linli token`.
        if principal.role != "operator" and row["role"] not in ADMIN_REVOKES:
            raise Forbidden(f"a {row['role']}'s token is revoked by an operator or with `linli token revoke`",
                            {"role": [f"{row['role']} tokens are not yours to revoke"]})
        if self.db.execute(store.REVOKE, (token_id,)).rowcount:
            store.audit(self.db, "token_revoked", row["name"], None, self._address(request), principal.actor)
        return reply(BY_NAME["revoke_token"], token_view(self.db.one(store.TOKEN, (token_id,))))

    @api("GET", "/api/v1/instance")
    def instance_state(self, request):
        principal = self._principal(request, "instance:read")
        code = self.config["NODE_CODE"]
        # The instance's insides (its children, links, queues) are for whoever's scope covers all of it.
        if not code.startswith(principal.node_prefix):
            raise Forbidden(f"the instance {code} is wider than this scope {principal.node_prefix}",
                            {"scope": [f"the operator view needs a scope covering {code}"]})
        # The aggregator and the broker first: no RPC or remote call once this request's transaction
        # holds a connection.
        own, children, names = None, None, {}
        try:
            own = self._call("identity", service="aggregator", timeout=ASK_WITHIN)
            children = self._call("children", service="aggregator", timeout=ASK_WITHIN)
            names = {n["code"]: n["name"] for n in self._call(
                "nodes", {}, self._caller(principal), service="aggregator", timeout=ASK_WITHIN)}
        except (DomainError, OutcomeUnknown) as exc:
            log.warning("operator view: the aggregator did not answer: %s", exc)
        broker = instance.broker(self.config)
        links = broker["children"]
        return reply(BY_NAME["instance_state"], {
            "code": code, "level": self.config["LEVEL"],
            "key_fingerprint": instance.fingerprint(own["public_key"]) if own else None,
            "checked_at": datetime.now(timezone.utc), "outboxes": instance.outboxes(self.db),
            "migrations": instance.migrations(self.db),
            "broker": {"reachable": broker["reachable"], "detail": broker["detail"]},
            "dead_letters": broker["dead_letters"], "unrouted": broker["unrouted"], "links": broker["links"],
            "parent_link": broker["parent"],
            "children": [{"code": c["code"], "name": names.get(c["code"]),
                          "key_fingerprint": instance.fingerprint(c["public_key"]),
                          "link": "unknown" if links is None else links.get(c["code"], "absent"),
                          "last_fact_at": c["last_fact_at"]} for c in children or []]})
