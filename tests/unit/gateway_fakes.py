"""A stand-in for the gateway's transaction in route tests: it answers the token lookup only."""
from unittest import mock

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
