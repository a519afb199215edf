"""RabbitMQ federation between a parent instance and its children, set up through the management API.

RabbitMQ does the transport between levels (DESIGN §3), our code only configures it:
- at the parent, an upstream per child (`linli-child-<code>`, `ack-mode: on-confirm`), gathered in
  the upstream set `linli-children`, and a policy federating the `facts` and `cases` exchanges from
  that set: the parent's receive what is published to each child's;
- at the child, an upstream to its parent (`linli-parent`) and a policy federating `directives`
  from it: what the parent publishes to `directives` reaches the child's. One hop only: a district
  re-issues its city's directive, signed with its own key, to its streets.
Facts go up one hop only (the default max-hops of 1): a district re-signs its streets' facts for
the city, which trusts only its own children's keys.

Two vhosts of one broker federate like two brokers, which is how the tests run a whole tree.
"""
import re
from urllib.parse import quote, unquote, urlsplit

import requests

from shared.messaging import FACTS, FEED, PATIENT_TIMEOUT, patient_session

CHILD_SET = "linli-children"
PARENT = "linli-parent"
FACTS_POLICY = "linli-federate-facts"
DIRECTIVES_POLICY = "linli-federate-directives"


class FederationError(Exception):
    pass


class Management:
    """The management API of one vhost, from a management URL and the vhost's AMQP URI."""

    def __init__(self, management_url, amqp_uri, patient=False):
        parts = urlsplit(management_url)
        self.base = f"{parts.scheme}://{parts.hostname}:{parts.port or 15672}/api"
        self.auth = (unquote(parts.username or "guest"), unquote(parts.password or "guest"))
        self.vhost = quote(unquote(urlsplit(amqp_uri).path[1:]) or "/", safe="")
        # patient: an operator's command, which may wait for a busy broker (shared/messaging.py).
        self._http, self._timeout = (patient_session(), PATIENT_TIMEOUT) if patient else (requests, 10)

    def _call(self, method, path, body=None):
        r = self._http.request(method, f"{self.base}/{path}", json=body, auth=self.auth, timeout=self._timeout)
        if r.status_code == 404 and method in ("GET", "DELETE"):
            return None
        if r.status_code >= 400:
            raise FederationError(f"{method} {path}: HTTP {r.status_code} {r.text[:200]}")
        return r.json() if r.content else None

    def set_upstream(self, name, uri, **extra):
        value = {"uri": uri, "ack-mode": "on-confirm", "trust-user-id": False, **extra}
        self._call("PUT", f"parameters/federation-upstream/{self.vhost}/{quote(name, safe='')}",
                   {"value": value})

    def remove_upstream(self, name):
        self._call("DELETE", f"parameters/federation-upstream/{self.vhost}/{quote(name, safe='')}")

    def upstream_set(self, name):
        found = self._call("GET", f"parameters/federation-upstream-set/{self.vhost}/{quote(name, safe='')}")
        return [u["upstream"] for u in (found or {}).get("value", [])]

    def set_upstream_set(self, name, upstreams):
        path = f"parameters/federation-upstream-set/{self.vhost}/{quote(name, safe='')}"
        if upstreams:
            self._call("PUT", path, {"value": [{"upstream": u} for u in sorted(upstreams)]})
        else:
            self._call("DELETE", path)

    def set_policy(self, name, pattern, definition):
        self._call("PUT", f"policies/{self.vhost}/{quote(name, safe='')}",
                   {"pattern": pattern, "apply-to": "exchanges", "definition": definition, "priority": 10})

    def queue_depths(self):
        """{queue: messages ready and unacknowledged} of every queue of this vhost."""
        found = self._call("GET", f"queues/{self.vhost}?columns=name,messages") or []
        return {q["name"]: int(q.get("messages") or 0) for q in found}

    def links(self):
        """Federation links of this vhost: [{"upstream", "exchange", "status", "error"}]."""
        found = self._call("GET", f"federation-links/{self.vhost}") or []
        return [{"upstream": link.get("upstream"), "exchange": link.get("exchange"), "status": link.get("status"),
                 "error": link.get("error")} for link in found]


def link_state(statuses):
    """One upstream's state from its links' statuses: running when every link runs, down when any has
    failed, starting while one is starting."""
    if any(s not in ("running", "starting") for s in statuses):
        return "down"
    return "starting" if "starting" in statuses else "running"


def child_link_states(links):
    """{child code: running | starting | down} from `links` (Management.links), by link_state."""
    prefix = child_upstream("")
    statuses = {}
    for link in links:
        name = link.get("upstream") or ""
        if name.startswith(prefix):
            statuses.setdefault(name[len(prefix):], []).append(link.get("status"))
    return {code: link_state(s) for code, s in statuses.items()}


def child_upstream(code):
    return f"linli-child-{code}"


def add_child(parent, code, child_amqp_uri):
    """The parent's side: federate the child's facts and cases into the parent's."""
    parent.set_upstream(child_upstream(code), child_amqp_uri)
    parent.set_upstream_set(CHILD_SET, set(parent.upstream_set(CHILD_SET)) | {child_upstream(code)})
    parent.set_policy(FACTS_POLICY, "^(facts|cases)$", {"federation-upstream-set": CHILD_SET})


def set_parent(child, parent_amqp_uri):
    """The child's side, on the child's own broker: federate the parent's directives into the child's."""
    child.set_upstream(PARENT, parent_amqp_uri, **{"max-hops": 1})
    child.set_policy(DIRECTIVES_POLICY, "^directives$", {"federation-upstream": PARENT})


def remove_child(parent, code):
    """Stop federating that child's facts (its directives link is the child's to remove)."""
    parent.set_upstream_set(CHILD_SET, set(parent.upstream_set(CHILD_SET)) - {child_upstream(code)})
    parent.remove_upstream(child_upstream(code))


# A department that stops reading must not fill the broker (its disk alarm would block every
# publisher of the instance): past this many, its oldest messages are dropped, never refused upstream.
# What was dropped can be read again from GET /feed after the last `seq` the department kept.
FEED_MAX_LENGTH = 1_000_000


def feed_user(management, name, password):
    """A read-only AMQP user for a superior department, and its queue: both named `feed-<name>`.

    The queue is declared and bound to `feed` here, with the management API's own rights: changed
    roll-ups under the small-cell rule, never facts (a user made before is unbound from `facts`,
    so adding it again moves it over). The user may only read it (basic.get, or basic.consume without declaring). RabbitMQ matches one
    pattern against exchanges and queues alike, so any configure or write right on a queue name
    pattern would also let the user declare, and publish to, an exchange of that name: the user
    gets none, and can declare, bind, publish or delete nothing."""
    user = f"feed-{name}"
    path = quote(user, safe="")
    management._call("PUT", f"queues/{management.vhost}/{path}",
                     {"durable": True, "auto_delete": False,
                      "arguments": {"x-queue-type": "quorum", "x-max-length": FEED_MAX_LENGTH,
                                    "x-overflow": "drop-head"}})
    # The exchange as topology declares it (same arguments), should topology not have run yet.
    management._call("PUT", f"exchanges/{management.vhost}/{FEED.name}",
                     {"type": FEED.type, "durable": True, "auto_delete": False, "arguments": FEED.arguments})
    management._call("POST", f"bindings/{management.vhost}/e/{FEED.name}/q/{path}", {"routing_key": "#"})
    management._call("DELETE", f"bindings/{management.vhost}/e/{FACTS.name}/q/{path}/%23")
    management._call("PUT", f"users/{path}", {"password": password, "tags": ""})
    management._call("PUT", f"permissions/{management.vhost}/{path}",
                     {"configure": "", "write": "", "read": f"^{re.escape(user)}$"})
    return user


def move_feed_queues(management):
    """Departments' queues made before the feed was aggregated are bound to `facts`: bind each to `feed`
    and take the old binding away, so no department goes on getting facts after an upgrade. Returns
    the queues moved (`linli topology apply` runs it)."""
    moved = []
    for b in management._call("GET", f"exchanges/{management.vhost}/{FACTS.name}/bindings/source") or []:
        queue = b.get("destination", "")
        if b.get("destination_type") != "queue" or not queue.startswith("feed-"):
            continue
        path = quote(queue, safe="")
        management._call("POST", f"bindings/{management.vhost}/e/{FEED.name}/q/{path}", {"routing_key": "#"})
        management._call("DELETE", f"bindings/{management.vhost}/e/{FACTS.name}/q/{path}/"
                                   f"{quote(b['properties_key'], safe='')}")
        moved.append(queue)
    return moved


# What a parent's link reads from a child, and a child's from its parent.
PARENT_READS = ("facts", "cases")
CHILD_READS = ("directives",)


def link_permissions(exchanges, reader_vhost):
    """A link user's permissions on the vhost it reads `exchanges` from (see link_user).

    The plugin names what it declares here after the exchange and the downstream's node, vhost and
    exchange (`federation: facts -> rabbit@host:district-310110:facts`, and for its upstream exchange
    the same with " A" or " B" after it), so the patterns pin the reader's own: one street's link
    cannot read or delete a sibling's directives queue, nor a child's link the city's facts queue
    on a district's vhost.
    """
    ex = "|".join(re.escape(e) for e in exchanges)
    own = f"federation: ({ex}) -> [^:]+:{re.escape(reader_vhost)}:({ex})( [AB])?"
    return {"configure": f"^{own}$", "write": f"^{own}$", "read": f"^({ex})$|^{own}$"}


def link_user(management, reader, reader_vhost, exchanges, password):
    """The AMQP user through which instance `reader` (its vhost `reader_vhost`, on its own broker)
    federates `exchanges` out of this vhost.

    The federation plugin, connecting as it, declares its own exchange and queue on this side,
    binds them to the exchanges it federates and reads the queue; that is all it may do: no
    publishing to our exchanges, no other queue, no management API. One user per link, so a link is
    revoked without touching the others. User names are broker-wide and a broker may hold several
    instances' vhosts, so the name carries both ends: `link-<reader's code>-<vhost>`.
    """
    user = f"link-{reader}-{unquote(management.vhost)}"
    management._call("PUT", f"users/{quote(user, safe='')}", {"password": password, "tags": ""})
    management._call("PUT", f"permissions/{management.vhost}/{quote(user, safe='')}",
                     link_permissions(exchanges, reader_vhost))
    return user


def dead_letters(management):
    """{queue: messages} for this vhost's dead-letter queues (`*.dlq`)."""
    return {name: n for name, n in management.queue_depths().items() if name.endswith(".dlq")}
