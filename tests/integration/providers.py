"""Local stand-ins for the notification providers: an HTTP SMS/WeChat provider, an SMTP server, a webhook receiver.

All listen on 127.0.0.1 and a free port, and are context managers (`with FakeProvider() as p:`).

How they live with eventlet (the test process is monkey-patched by tests/conftest.py):
- `FakeProvider` and `WebhookReceiver` are `eventlet.wsgi` servers on green threads in
  the test process. They run whenever the test's own green thread waits on I/O (as
  `requests` does), so a test calls the adapter directly and the server answers.
  They never block the hub (their "slow" mode uses a green sleep).
- `LocalSmtp` runs aiosmtpd's asyncio loop in a real OS thread (from
  `eventlet.patcher.original("threading")`) with an unpatched selector, so asyncio never
  runs on, or blocks, the eventlet hub; the test thread talks to it over a real socket.

Standalone, for benchmarks: `python -m tests.integration.providers --port 0 --token T`
prints `READY <url>` and accepts everything until killed, keeping counts only
(`GET <base>/stats` answers {"requests": n, "messages": n}).
"""
import argparse
import email.policy
import json
import socket
import sys
import threading
import warnings
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")  # as in shared/green.py

import eventlet
import eventlet.wsgi

_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            405: "Method Not Allowed", 408: "Request Timeout", 413: "Payload Too Large",
            422: "Unprocessable Entity", 429: "Too Many Requests", 500: "Internal Server Error",
            502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


def _status(code):
    return f"{code} {_REASONS.get(code, 'Status')}"


def _json_response(start_response, code, value):
    body = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    start_response(_status(code), [("Content-Type", "application/json; charset=utf-8"),
                                   ("Content-Length", str(len(body)))])
    return [body]


def _headers(environ):
    """The request headers as a case-insensitive dict."""
    from requests.structures import CaseInsensitiveDict
    out = CaseInsensitiveDict()
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            out[key[5:].replace("_", "-").title()] = value
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            out[key.replace("_", "-").title()] = value
    return out


def _read_body(environ):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    return environ["wsgi.input"].read(length) if length > 0 else b""


class _GreenHttpServer:
    """An eventlet.wsgi server on a green thread, listening on 127.0.0.1 and a free port."""

    def __init__(self, host="127.0.0.1", port=0):
        self._sock = eventlet.listen((host, port))
        # Inherited by accepted sockets: without it, Nagle + delayed ACK stall each answer ~40 ms.
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.port = self._sock.getsockname()[1]
        self.base_url = f"http://{host}:{self.port}"
        self._pool = eventlet.GreenPool(10000)
        self._server = eventlet.spawn(eventlet.wsgi.server, self._sock, self._app, log_output=False,
                                      custom_pool=self._pool, debug=False)
        self._closed = False

    def _app(self, environ, start_response):  # pragma: no cover - overridden
        raise NotImplementedError

    def serve_forever(self):
        self._server.wait()

    def close(self):
        if self._closed:
            return
        self._closed = True
        for gt in list(self._pool.coroutines_running):
            gt.kill()
        self._server.kill()
        try:
            self._sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class FakeProvider(_GreenHttpServer):
    """An SMS/WeChat provider speaking the protocol of services.notification.channels.HttpProvider.

    - `url`: where to POST batches.
    - `received`: every accepted or rejected message dict ({"ref", "to", "subject", "text"}) in
      arrival order. Like a real provider it de-duplicates on ref: a ref it already accepted
      is answered "accepted" with its first id, not appended again, and counted in `duplicates`.
    - `requests`: every request, {"headers": case-insensitive dict, "body": bytes, "status": int}.
    - `ids`: ref -> provider id ("<name>-<counter>") of accepted messages.
    - `fail_next(n, status=503)`, `always_fail(status=503)`, `reject(address, error=…)`,
      `skip(address)` (left out of the answer), `slow(seconds)` (answer late), `recover()`.
    A request without `Authorization: Bearer <token>` gets 401 (and does not use up fail_next).
    """

    def __init__(self, name="fake", token="test-token", host="127.0.0.1", port=0, keep=True):
        self.name, self.token, self.keep = name, token, keep
        self._auth = f"Bearer {token}"
        self._lock = threading.Lock()
        self._last_id = 0
        self.received, self.requests, self.ids = [], [], {}
        self.duplicates = self.request_count = self.message_count = 0
        self._fail_count, self._fail_status, self._always = 0, 503, None
        self._rejected, self._skipped, self._delay = {}, set(), 0.0
        super().__init__(host, port)
        self.url = self.base_url + "/send"

    def fail_next(self, n, status=503):
        with self._lock:
            self._fail_count, self._fail_status = n, status

    def always_fail(self, status=503):
        with self._lock:
            self._always = status

    def reject(self, address, error="invalid number"):
        with self._lock:
            self._rejected[address] = error

    def skip(self, address):
        with self._lock:
            self._skipped.add(address)

    def slow(self, seconds):
        with self._lock:
            self._delay = seconds

    def recover(self):
        with self._lock:
            self._fail_count, self._always, self._delay = 0, None, 0.0
            self._rejected.clear()
            self._skipped.clear()

    def _app(self, environ, start_response):
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        if method == "GET" and path == "/stats":
            return _json_response(start_response, 200, {"requests": self.request_count,
                                                        "messages": self.message_count})
        if method != "POST":
            return _json_response(start_response, 405, {"error": "POST only"})
        raw = _read_body(environ)
        if not self.keep:
            return self._fast(environ, raw, start_response)
        headers = _headers(environ)
        record = {"headers": headers, "body": raw, "status": None}
        with self._lock:
            self.requests.append(record)
            self.request_count += 1
            delay = self._delay
            status = None
            if headers.get("Authorization") != self._auth:
                status = 401
            elif self._always:
                status = self._always
            elif self._fail_count > 0:
                self._fail_count -= 1
                status = self._fail_status
        if delay:
            eventlet.sleep(delay)
        if status is not None:
            record["status"] = status
            return _json_response(start_response, status, {"error": f"{self.name} says {status}"})
        try:
            batch = json.loads(raw)
            messages = batch["messages"]
            assert isinstance(messages, list) and all(isinstance(m, dict) and isinstance(m.get("ref"), str)
                                                      for m in messages)
        except (ValueError, KeyError, TypeError, AssertionError):
            record["status"] = 400
            return _json_response(start_response, 400, {"error": "bad batch"})
        results = []
        with self._lock:
            for m in messages:
                ref, to = m["ref"], m.get("to")
                if to in self._skipped:
                    continue
                if ref in self.ids:
                    self.duplicates += 1
                    results.append({"ref": ref, "status": "accepted", "id": self.ids[ref]})
                    continue
                self.received.append(m)
                self.message_count += 1
                if to in self._rejected:
                    results.append({"ref": ref, "status": "rejected", "error": self._rejected[to]})
                else:
                    self._last_id += 1
                    self.ids[ref] = pid = f"{self.name}-{self._last_id}"
                    results.append({"ref": ref, "status": "accepted", "id": pid})
        record["status"] = 200
        return _json_response(start_response, 200, {"results": results})

    def _fast(self, environ, raw, start_response):
        """Standalone mode: accept everything, keep counts only."""
        if environ.get("HTTP_AUTHORIZATION") != self._auth:
            return _json_response(start_response, 401, {"error": "bad token"})
        try:
            refs = [m["ref"] for m in json.loads(raw)["messages"]]
        except (ValueError, KeyError, TypeError):
            return _json_response(start_response, 400, {"error": "bad batch"})
        start = self._last_id + 1
        self._last_id += len(refs)
        prefix = self.name + "-"
        body = json.dumps({"results": [{"ref": ref, "status": "accepted", "id": prefix + str(start + i)}
                                       for i, ref in enumerate(refs)]}, separators=(",", ":")).encode()
        self.request_count += 1
        self.message_count += len(refs)
        start_response("200 OK", [("Content-Type", "application/json; charset=utf-8"),
                                  ("Content-Length", str(len(body)))])
        return [body]


class WebhookReceiver(_GreenHttpServer):
    """Records every POST: `received` holds {"path", "headers", "body" (bytes), "json"} in arrival order.

    `url` is the base URL (any path is accepted; `url_for("/x")` builds one). `fail_next(n, status)`
    answers that status to the next n requests, `always_fail(status)` to all, `recover()` stops both.
    """

    def __init__(self, host="127.0.0.1", port=0):
        self._lock = threading.Lock()
        self.received = []
        self._fail_count, self._fail_status, self._always = 0, 500, None
        super().__init__(host, port)
        self.url = self.base_url + "/hook"

    def url_for(self, path):
        return self.base_url + path

    def fail_next(self, n, status=500):
        with self._lock:
            self._fail_count, self._fail_status = n, status

    def always_fail(self, status=500):
        with self._lock:
            self._always = status

    def recover(self):
        with self._lock:
            self._fail_count, self._always = 0, None

    def _app(self, environ, start_response):
        raw = _read_body(environ)
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        with self._lock:
            self.received.append({"path": environ.get("PATH_INFO", ""), "method": environ["REQUEST_METHOD"],
                                  "headers": _headers(environ), "body": raw, "json": parsed})
            status = 200
            if self._always:
                status = self._always
            elif self._fail_count > 0:
                self._fail_count -= 1
                status = self._fail_status
        return _json_response(start_response, status, {"status": status})


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list
    message: EmailMessage


class LocalSmtp:
    """An aiosmtpd SMTP server on 127.0.0.1 and a free port, in a real OS thread.

    `url` is smtp://127.0.0.1:<port>; `messages` the ReceivedMail (envelope + parsed
    EmailMessage, default policy) in arrival order. `refuse(address, code=550)` answers
    RCPT TO for that address with the code (use 450 for a temporary refusal);
    `drop_after(n)` answers 421 to DATA once n more messages were accepted;
    `smtputf8=False` makes it a server that does not take non-ASCII addresses.
    A message is in `messages` before the client's send returns.
    """

    def __init__(self, refuse=(), smtputf8=True):
        from eventlet import patcher
        self.smtputf8 = smtputf8
        self._threading = patcher.original("threading")
        self._selectors = _unpatched_selectors()
        self._lock = self._threading.Lock()
        self.messages = []
        self._refused = {a.lower(): 550 for a in refuse}
        self._drop_after = None
        self._loop = None
        self._error = None
        self._ready = self._threading.Event()
        self._thread = self._threading.Thread(target=self._run, name="local-smtp", daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or self._error:   # a real wait: the server thread needs no hub
            raise RuntimeError(f"LocalSmtp did not start: {self._error!r}")
        self.url = f"smtp://127.0.0.1:{self.port}"

    def refuse(self, address, code=550):
        with self._lock:
            self._refused[address.lower()] = code

    def drop_after(self, n):
        with self._lock:
            self._drop_after = n

    def _run(self):
        import asyncio

        from aiosmtpd.smtp import SMTP

        try:
            loop = self._loop = asyncio.SelectorEventLoop(self._selectors.DefaultSelector())
            asyncio.set_event_loop(loop)
            server = loop.run_until_complete(loop.create_server(
                lambda: SMTP(_Handler(self), hostname="localhost", loop=loop, enable_SMTPUTF8=self.smtputf8),
                "127.0.0.1", 0))
            self.port = server.sockets[0].getsockname()[1]
        except BaseException as e:  # noqa: BLE001 - reported to the starting thread
            self._error = e
            self._ready.set()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            server.close()
            loop.run_until_complete(server.wait_closed())
            for task in asyncio.all_tasks(loop):
                task.cancel()
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()

    def close(self):
        if self._loop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _unpatched_selectors():
    """A fresh `selectors` module built on the original `select` (with epoll).

    `eventlet.patcher.original("selectors")` is not enough: it re-imports `selectors`
    against the patched `select`, whose green `select()` blocks the hub of whatever
    thread calls it and lacks epoll/poll.
    """
    import importlib.util

    from eventlet import patcher
    saved = sys.modules.get("select")
    sys.modules["select"] = patcher.original("select")
    try:
        spec = importlib.util.find_spec("selectors")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.modules["select"] = saved
    return module


class _Handler:
    """aiosmtpd handler; runs in LocalSmtp's OS thread."""

    def __init__(self, owner):
        self.owner = owner

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.owner._lock:
            code = self.owner._refused.get(address.lower())
        if code:
            return f"{code} {'5' if code >= 500 else '4'}.1.1 <{address}> refused"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        owner = self.owner
        with owner._lock:
            if owner._drop_after is not None:
                if owner._drop_after <= 0:
                    return "421 4.3.2 closing the connection"
                owner._drop_after -= 1
            raw = envelope.original_content or envelope.content
            message = BytesParser(policy=email.policy.default).parsebytes(raw)
            owner.messages.append(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 OK queued"


def main(argv=None):
    parser = argparse.ArgumentParser(description="A fake SMS/WeChat provider that accepts everything.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", required=True)
    parser.add_argument("--name", default="fake")
    args = parser.parse_args(argv)
    provider = FakeProvider(args.name, args.token, host=args.host, port=args.port, keep=False)
    print(f"READY {provider.url}", flush=True)
    try:
        provider.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        print(f"SERVED {provider.request_count} requests, {provider.message_count} messages",
              file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
