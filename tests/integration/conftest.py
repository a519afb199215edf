"""Integration helpers: a SQL shortcut, the demo hierarchy and tokens, a broker peek, the HTTP API.

Every answer the gateway gives a test through `web_session` is checked against the OpenAPI
document (`web_session` below): the document is the contract, so a new route is held to it
without anyone remembering to.
"""
import functools
import json
import time

import psycopg
import pytest
from kombu import Connection
from psycopg.rows import dict_row

from services.gateway import auth, store as token_store
from linli import all_service_classes
from shared.messaging import apply_topology


def wait_for(predicate, timeout=15, interval=0.05, message="condition"):
    """Poll until `predicate()` is truthy; returns its value (a test waits on behaviour, not on a clock)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        time.sleep(interval)


@functools.lru_cache(maxsize=1)
def _document():
    from openapi_core import Config, OpenAPI
    from services.gateway import openapi
    # Problems are JSON too; openapi-core only knows application/json as such.
    config = Config(extra_media_type_deserializers={"application/problem+json": json.loads})
    return OpenAPI.from_dict(openapi.build("test"), config=config)


def check_against_document(resp):
    """Fail unless the answer is one the document gives for that path and method: its status, its
    media type, and a body its schema accepts. Paths the document does not have (the catch-all
    404) are left alone."""
    from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
    from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound, ServerNotFound
    try:
        _document().validate_response(RequestsOpenAPIRequest(resp.request), RequestsOpenAPIResponse(resp))
    except (PathNotFound, OperationNotFound, ServerNotFound):
        return
    except Exception as exc:
        cause = getattr(exc, "__cause__", None)
        details = getattr(cause, "schema_errors", None) or [cause or exc]
        raise AssertionError(f"{resp.request.method} {resp.request.path_url} answered {resp.status_code} "
                             f"outside the OpenAPI document: {exc}: "
                             + "; ".join(str(getattr(e, "message", e))[:300] for e in details)
                             + f"\nbody: {resp.text[:500]}") from None


@pytest.fixture
def web_session(web_session):
    """nameko's HTTP session, holding every answer to the OpenAPI document and failing the test on a 5xx
    other than the broker's 503/504: a 500 is a fault of ours, never a refusal."""
    send = web_session.request

    def request(method, url, *args, **kwargs):
        resp = send(method, url, *args, **kwargs)
        if resp.status_code >= 500 and resp.status_code not in (503, 504):
            raise AssertionError(f"{method} {url} answered {resp.status_code}: {resp.text[:500]}")
        check_against_document(resp)
        return resp
    web_session.request = request
    return web_session


@pytest.fixture
def sql(config):
    def run(query, params=None):
        with psycopg.connect(config["DATABASE_URL"], autocommit=True, row_factory=dict_row) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else cur.rowcount
    return run


@pytest.fixture
def cfg(base_config, clean_db):
    """The config of a use-case test: the test database, no broker (nothing is relayed)."""
    return {**base_config, "DATABASE_URL": clean_db}


@pytest.fixture
def in_tx(cfg):
    """in_tx(service) runs that service's use cases each in its own committed transaction, as a worker would."""
    def factory(service):
        from shared import envelope, facts
        from shared.db import transaction
        source, signer = envelope.source_from_config(service, cfg), facts.Signer.from_config(cfg)

        def run(fn, *args, **kwargs):
            with transaction(cfg["DATABASE_URL"], service, source, signer) as t:
                return fn(t, *args, **kwargs)
        return run
    return factory


@pytest.fixture
def schema_sql(cfg):
    """schema_sql(schema) runs SQL against that schema and returns tuples (or the row count)."""
    def factory(schema):
        def run(query, params=None):
            with psycopg.connect(cfg["DATABASE_URL"], autocommit=True) as conn:
                conn.execute(f'SET search_path TO "{schema}"')
                cur = conn.execute(query, params)
                return cur.fetchall() if cur.description else cur.rowcount
        return run
    return factory


@pytest.fixture
def demo_tree(config):
    from linli.demo import load_hierarchy
    from shared import envelope
    from shared.db import transaction
    from shared.facts import Signer
    # Signed: registering nodes tells the level above about them (a node_changed fact each).
    with transaction(config["DATABASE_URL"], "registry", envelope.source_from_config("registry", config),
                     Signer.from_config(config)) as tx:
        load_hierarchy(tx, config["NODE_CODE"])


@pytest.fixture
def make_token(config):
    """Insert a token directly (as `linli token create` does) and return it."""
    def make(role="street_admin", prefix=None, name="测试用户", organization_id=None, resident_id=None):
        token_id, token = auth.new_token()
        with psycopg.connect(config["DATABASE_URL"], autocommit=True) as conn:
            conn.execute("SET search_path TO gateway")
            token_store.add(conn, token_id, token, name, role, prefix or config["NODE_CODE"],
                            organization_id=organization_id, resident_id=resident_id)
        return token
    return make


@pytest.fixture
def make_account(config):
    """Insert a staff account directly (as `linli account create` does); returns its password."""
    from services.gateway import accounts

    def make(username, role="street_admin", prefix=None, name=None, password="Aa1-long-enough", organization_id=None,
             must_change=False):
        with psycopg.connect(config["DATABASE_URL"], autocommit=True) as conn:
            conn.execute("SET search_path TO gateway")
            conn.execute(token_store.INSERT_ACCOUNT, (username, name or username, accounts.hash_password(password), role,
                                                      prefix or config["NODE_CODE"], organization_id, must_change,
                                                      "test"))
        return password
    return make


@pytest.fixture
def person(web_config_port):
    """person() is a new browser-like HTTP client of the gateway, with its own cookies; `.sign_in(user,
    password)` signs it in and keeps the CSRF token, which `.change(method, path, ...)` sends."""
    from requests import Session

    class Person(Session):
        csrf = None

        def request(self, method, url, *args, **kwargs):
            return Session.request(self, method, f"http://127.0.0.1:{web_config_port}{url}", *args, **kwargs)

        def sign_in(self, username, password):
            resp = self.post("/api/v1/session", json={"username": username, "password": password})
            if resp.status_code == 200:
                self.csrf = resp.json()["csrf_token"]
            return resp

        def change(self, method, url, **kwargs):
            headers = {"X-CSRF-Token": self.csrf or "", **kwargs.pop("headers", {})}
            return self.request(method, url, headers=headers, **kwargs)

    made = []

    def make():
        made.append(Person())
        return made[-1]
    yield make
    for p in made:
        p.close()


@pytest.fixture
def broker(config):
    """Read messages off queues in this test's vhost."""
    class Peek:
        def get_all(self, queue_name):
            """Drain a queue and return the decoded bodies."""
            bodies = []
            with Connection(config["AMQP_URI"]) as conn:
                channel = conn.channel()
                while (msg := channel.basic_get(queue_name, no_ack=True)) is not None:
                    bodies.append(json.loads(msg.body))
            return bodies

        def depth(self, queue_name):
            with Connection(config["AMQP_URI"]) as conn:
                _, count, _ = conn.default_channel.queue_declare(queue_name, passive=True)
                return count
    return Peek()


@pytest.fixture
def api(container_factory, config, demo_tree, web_session, make_token):
    """Every service of the instance running in this test's vhost, behind the real HTTP gateway."""
    services = all_service_classes()
    apply_topology(config, services)
    for cls in services:
        container_factory(cls, config).start()
    token = make_token("street_admin")

    class Api:
        def __init__(self, token):
            self.headers = {"Authorization": f"Bearer {token}"}

        def __getattr__(self, method):
            def call(path, **kwargs):
                headers = {**self.headers, **kwargs.pop("headers", {})}
                return web_session.request(method.upper(), path, headers=headers, **kwargs)
            return call

        def as_(self, token):
            return Api(token)

    return Api(token)


def assert_problem(resp, status, field):
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    body = resp.json()
    assert body["status"] == status and body["detail"]
    assert field in body["errors"], body
    return body
