"""The OpenAPI document against the live gateway: schemathesis sends a few generated requests to every
operation, as a street admin and as a department's feed (which most operations refuse, and whose
reads come under the small-cell rule), and fails on any 5xx and on any answer the document does not give
(status, media type, body).

Real: every service of the instance in this test's vhost, behind the real HTTP gateway, on the test
database with the demo hierarchy. Bounded (a few examples per operation, derandomised), so it runs
in CI in well under a minute.
"""
from collections import Counter

import schemathesis
import pytest
from hypothesis import HealthCheck, given, settings
from schemathesis import checks
from schemathesis.core.errors import SerializationNotPossible

from services.gateway import openapi

EXAMPLES = 3
CHECKS = [checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
          checks.response_schema_conformance]


# How many answers of 200 a run must see, so it shows it reached the services, not only refusals.
REACHED = {"street_admin": 50, "department_feed": 5}


@pytest.mark.parametrize("role", sorted(REACHED))
def test_every_operation_answers_as_the_document_says(api, config, make_token, role):
    api = api.as_(make_token(role))
    schema = schemathesis.openapi.from_dict(openapi.build("test"))
    base_url = f"http://{config['WEB_SERVER_ADDRESS']}"
    failures, tried, answers = [], 0, Counter()
    for result in schema.get_all_operations():
        operation = result.ok()
        try:
            strategy = operation.as_strategy()
        except SerializationNotPossible:
            continue   # a body schemathesis cannot write (a CSV upload): its own tests cover it

        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=strategy)
        def run(case):
            response = case.call(base_url=base_url, headers=api.headers)
            answers[response.status_code // 100 * 100] += 1
            case.validate_response(response, checks=CHECKS)

        try:
            run()
        except SerializationNotPossible:
            continue
        except Exception as exc:   # a failed check: say which operation, keep going
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:600]}")
        tried += 1
    print(f"operations {tried}, answers by class {dict(answers)}")
    assert tried > 100 and answers[200] > REACHED[role], (tried, answers)
    assert failures == [], "\n\n".join(failures)
