"""A stand-in for the gateway's transaction in route tests: it answers the token lookup only."""
import json
from unittest import mock

from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from services.gateway import auth


class FakeTokens:
    """Knows `tokens` (role -> token) as `principals` (role -> Principal); counts the lookups."""

    def __init__(self, tokens, principals):
        self.by_hash = {auth.token_hash(tokens[role]): p for role, p in principals.items()}
        self.lookups = 0

    def finish(self, commit):
        pass

    def execute(self, sql, params):
        self.lookups += 1
        p = self.by_hash.get(params[0])
        return mock.Mock(fetchone=lambda: p and {"token_id": p.token_id, "name": p.name, "role": p.role,
                                                 "node_prefix": p.node_prefix, "organization_id": p.organization_id,
                                                 "resident_id": p.resident_id})


def http_request(tokens, method, path, body=None, role="street_admin", query=None, headers=None, data=None):
    """A werkzeug Request as the gateway receives it, with `role`'s token (none if role is None)."""
    headers = {**({"Authorization": f"Bearer {tokens[role]}"} if role else {}), **(headers or {})}
    if data is None and body is not None:
        data = json.dumps(body)
    builder = EnvironBuilder(method=method, path=path, query_string=query, headers=headers, data=data,
                             content_type="application/json")
    return Request(builder.get_environ())
