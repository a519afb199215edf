"""Every HTTP operation the gateway serves from a declaration (shared/api.py), gathered from the
services that own them; routes.py builds the routes and openapi.py the document from this list."""
from services.aggregator import api as aggregator_api
from services.consultation import api as consultation_api
from services.gateway import api as gateway_api
from services.notification import api as notification_api
from services.points import api as points_api
from services.registry import api as registry_api
from shared.api import operations

MODULES = (registry_api, points_api, consultation_api, notification_api, aggregator_api, gateway_api)
OPERATIONS = operations(*MODULES)
# Tag descriptions, where a service gives them (`TAGS` in its api.py).
TAGS = {name: text for module in MODULES for name, text in getattr(module, "TAGS", {}).items()}
BY_NAME = {op.handler_name: op for op in OPERATIONS}
