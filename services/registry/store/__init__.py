"""All of the registry's SQL, as named statements over a `Tx` (shared.db), one module per area.

Use cases call `store.<function>`; each area's module is re-exported here so
callers need not know which file holds a statement.
"""
from services.registry.store.nodes import *  # noqa: F401,F403
from services.registry.store.residents import *  # noqa: F401,F403
from services.registry.store.organizations import *  # noqa: F401,F403
from services.registry.store.workers import *  # noqa: F401,F403
from services.registry.store.party import *  # noqa: F401,F403
from services.registry.store.holders import *  # noqa: F401,F403
