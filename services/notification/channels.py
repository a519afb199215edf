"""Delivery channel adapters: turn a batch of rendered messages into provider calls.

Pure I/O adapters with no database access. The sender hands each adapter a batch
of `Message`s and gets back one `Outcome` per message, in order; it decides what
to retry. `ProviderDown` means the provider as a whole failed (the sender rests
it and tries the next one); a `permanent` Outcome means a retry would not help.

All calls block the calling (green) thread for at most about `timeout` per
request; under eventlet monkey-patching they yield to the hub while waiting.
"""
import hashlib
import hmac
import json
import smtplib
import socket
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from urllib.parse import unquote, urlsplit

import eventlet
import requests
import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import allowed_gai_family

from services.notification import egress

__all__ = [
    "HttpProvider",
    "Message",
    "Outcome",
    "ProviderDown",
    "SmtpChannel",
    "WebhookChannel",
    "build",
    "sign",
    "verify_receipt",
]

USER_AGENT = "linli-notification/1"


@dataclass(frozen=True)
class Message:
    ref: str      # our delivery id as text; providers and receivers de-duplicate on it
    to: str       # address: a phone (sms), an openid (wechat), an email address, or an https URL (webhook)
    subject: str
    text: str


@dataclass(frozen=True)
class Outcome:
    ref: str
    ok: bool
    provider_ref: str | None = None   # the provider's id for the message, used to match receipts later
    error: str | None = None
    permanent: bool = False           # a refusal a retry would not change (bad number, 4xx): do not retry


class ProviderDown(Exception):
    """The provider as a whole failed (refused connection, timeout, 5xx, 401/403, malformed answer)."""


def _json_bytes(value):
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _snippet(text, limit=200):
    # Text from a receiver or provider ends up in the database: no NUL, nothing that is not UTF-8.
    text = (text or "").replace("\x00", " ").encode("utf-8", "replace").decode("utf-8")
    return " ".join(text.split())[:limit]


def _keep_auth(request):
    return request


def _session():
    """A requests Session that keeps proxy settings from the environment but never applies ~/.netrc
    credentials (they would replace our Authorization header, or leak to a webhook receiver)."""
    session = requests.Session()
    session.headers.update({"User-Agent": USER_AGENT})
    session.auth = _keep_auth
    return session


class _CheckedConnection:
    """A urllib3 connection that resolves its host once, refuses it unless every address is public (or
    allowed), and connects to exactly the addresses it checked: nothing resolves the name again between
    the check and the connection, so DNS rebinding cannot swap an internal address in. TLS still checks
    the certificate against the name. `egress.Refused` passes through urllib3 and requests as itself."""

    allow = ()

    def _new_conn(self):
        answers = None
        try:
            answers = egress.resolve(self._dns_host.rstrip("."), self.port, self.allow, allowed_gai_family())
            return _open_socket(answers, self.timeout, self.socket_options)
        except socket.gaierror as e:
            raise NameResolutionError(self.host, self, e) from e
        except socket.timeout as e:
            raise ConnectTimeoutError(self, f"Connection to {self.host} timed out") from e
        except OSError as e:
            raise NewConnectionError(self, f"Failed to establish a new connection: {e}") from e


def _open_socket(answers, timeout, options):
    """Connect to the first of `answers` (checked sockaddrs) that takes the connection."""
    error = None
    for family, kind, proto, sockaddr in answers:
        sock = socket.socket(family, kind, proto)
        try:
            for option in options or ():
                sock.setsockopt(*option)
            if isinstance(timeout, (int, float)):
                sock.settimeout(timeout)
            sock.connect(sockaddr)
            return sock
        except OSError as e:
            error = e
            sock.close()
    raise error


def _checked_session(allow):
    """A session for webhooks: every connection checked (`_CheckedConnection`), no proxy from the
    environment (a proxy would resolve and reach the address for us, past the check) and no ~/.netrc."""
    allow = tuple(allow or ())
    http_conn = type("CheckedHTTPConnection", (_CheckedConnection, HTTPConnection), {"allow": allow})
    https_conn = type("CheckedHTTPSConnection", (_CheckedConnection, HTTPSConnection), {"allow": allow})
    pools = {"http": type("CheckedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}),
             "https": type("CheckedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn})}

    class CheckedAdapter(requests.adapters.HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs):
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = pools

        def proxy_manager_for(self, proxy, **kwargs):
            raise egress.Refused("webhooks are not sent through a proxy")

    session = requests.Session()
    session.trust_env = False
    session.headers.update({"User-Agent": USER_AGENT})
    session.auth = _keep_auth
    session.mount("http://", CheckedAdapter())
    session.mount("https://", CheckedAdapter())
    return session


def sign(secret, body: bytes) -> str:
    """The signature header value for `body`: `sha256=<hex HMAC-SHA256(secret, body)>`."""
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def verify_receipt(secret, body: bytes, signature_header: str) -> bool:
    """True when `signature_header` is `sign(secret, body)` (constant-time); False for anything else."""
    if not secret or not isinstance(signature_header, str) or not signature_header.startswith("sha256="):
        return False
    return hmac.compare_digest(sign(secret, body).encode("ascii"),
                               signature_header.strip().lower().encode("ascii", "replace"))


class HttpProvider:
    """An SMS or WeChat provider speaking Linli's provider protocol over HTTP(S).

    Protocol (write a bridge to a real vendor against this):

    Request, one per batch::

        POST <url>
        Authorization: Bearer <token>
        Content-Type: application/json; charset=utf-8
        Idempotency-Key: <sha256 hex of the batch's refs joined by ",">

        {"channel": "sms", "messages": [{"ref": "42", "to": "+8613800000000",
                                         "subject": "…", "text": "…"}, …]}

    `ref` is unique per delivery and stable across retries: the provider must not
    send a ref twice (a retried batch carries the same Idempotency-Key). Text is UTF-8.

    Answer 200 (or any 2xx)::

        {"results": [{"ref": "42", "status": "accepted", "id": "<provider id>"},
                     {"ref": "43", "status": "rejected", "error": "invalid number"}]}

    - accepted: sent; `id` is later quoted in delivery receipts (provider_ref).
    - rejected: refused for good (bad number, blocked content): not retried.
    - a ref absent from `results`: not answered, retried later.
    - 400/413/422 and other 4xx (except those below): the whole batch is refused
      for good (every message permanent, with the status and body start as error).
    - 401/403/404/405/407/408/409/429, any 5xx, 3xx, a timeout (each read, and
      three times it for the whole call), a refused connection, or a body that
      is not JSON of the shape above: `ProviderDown` (the sender rests this
      provider and retries the batch later or elsewhere).
    """

    def __init__(self, name, channel, url, token, timeout=10.0):
        self.name, self.channel, self.url, self.timeout = name, channel, url, float(timeout)
        self._token = token
        self.session = _session()

    def __repr__(self):
        return f"HttpProvider({self.name!r}, {self.channel!r}, {self.url!r})"

    def send(self, messages: list[Message]) -> list[Outcome]:
        if not messages:
            return []
        refs = [m.ref for m in messages]
        body = _json_bytes({"channel": self.channel,
                            "messages": [{"ref": m.ref, "to": m.to, "subject": m.subject, "text": m.text}
                                         for m in messages]})
        headers = {"Authorization": f"Bearer {self._token}",
                   "Content-Type": "application/json; charset=utf-8",
                   "Accept": "application/json",
                   "Idempotency-Key": hashlib.sha256(",".join(refs).encode("utf-8")).hexdigest()}
        try:
            # requests' timeout is per socket read; the deadline bounds the whole call (a trickling answer).
            with eventlet.Timeout(self.timeout * 3):
                resp = self.session.post(self.url, data=body, headers=headers, timeout=self.timeout,
                                         allow_redirects=False)
                _ = resp.content  # the whole answer, inside the deadline
        except (requests.Timeout, eventlet.Timeout):
            raise ProviderDown(f"{self.name}: no answer within {self.timeout:g}s") from None
        except requests.ConnectionError as e:
            raise ProviderDown(f"{self.name}: cannot connect ({_snippet(str(e), 160)})") from None
        except requests.RequestException as e:
            raise ProviderDown(f"{self.name}: request failed ({type(e).__name__}: {_snippet(str(e), 160)})") from None

        status = resp.status_code
        # A wrong URL, a proxy in the way or a conflict says nothing about the messages: try elsewhere.
        if status >= 500 or status in (401, 403, 404, 405, 407, 408, 409, 429) or 300 <= status < 400 or status < 200:
            raise ProviderDown(f"{self.name}: HTTP {status} {_snippet(resp.text, 120)}".rstrip())
        if status >= 400:
            error = f"{self.name} refused the batch: HTTP {status} {_snippet(resp.text)}".rstrip()
            return [Outcome(ref, False, error=error, permanent=True) for ref in refs]
        return self._outcomes(refs, resp)

    def _outcomes(self, refs, resp):
        try:
            answer = resp.json()
        except ValueError:
            raise ProviderDown(f"{self.name}: answer is not JSON ({_snippet(resp.text, 80)})") from None
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list):
            raise ProviderDown(f"{self.name}: answer has no results list")
        by_ref = {}
        for r in results:
            if not isinstance(r, dict) or not isinstance(r.get("ref"), str) \
                    or r.get("status") not in ("accepted", "rejected") \
                    or not isinstance(r.get("id"), (str, int, type(None))) or isinstance(r.get("id"), bool):
                raise ProviderDown(f"{self.name}: malformed result {_snippet(json.dumps(r, ensure_ascii=False), 80)}")
            by_ref.setdefault(r["ref"], r)
        out = []
        for ref in refs:
            r = by_ref.get(ref)
            provider_ref = None if r is None or r.get("id") is None else str(r["id"])
            if r is None:
                out.append(Outcome(ref, False, error=f"no answer from {self.name} for this message"))
            elif r["status"] == "accepted":
                out.append(Outcome(ref, True, provider_ref=provider_ref))
            else:
                error = _snippet(str(r.get("error") or "rejected"))
                out.append(Outcome(ref, False, provider_ref=provider_ref,
                                   error=f"{self.name} rejected: {error}", permanent=True))
        return out


_SMTP_SCHEMES = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}


class SmtpChannel:
    """Email over SMTP: one connection per batch, one message per recipient.

    url: `smtp://[user:password@]host[:port]` (plain, port 25), `smtp+starttls://…`
    (port 587, STARTTLS) or `smtps://…` (port 465, TLS from the start); user and
    password are URL-decoded, and login happens only when they are given.

    Each message carries `Message-ID: <ref@linli>` (also the provider_ref) so a
    receiver can de-duplicate a retried send. Outcomes:
    - accepted by the server: ok.
    - recipient refused or data refused with 5xx: permanent; with 4xx: retry later.
    - cannot connect / TLS / login fails, or the connection drops before any
      message of the batch was accepted: `ProviderDown`.
    - the connection drops (or the server answers 421) after some messages were
      accepted: those stay ok and the message being sent plus the unsent rest come
      back ok=False, permanent=False (retried), so no accepted result is lost.
    """

    name = "smtp"
    channel = "email"

    def __init__(self, url, sender, timeout=10.0):
        parts = urlsplit(url)
        if parts.scheme not in _SMTP_SCHEMES or not parts.hostname:
            raise ValueError("SMTP URL must look like smtp://[user:password@]host[:port] "
                             "(or smtp+starttls://, smtps://)")
        self.scheme, self.host = parts.scheme, parts.hostname
        self.port = parts.port or _SMTP_SCHEMES[parts.scheme]
        self._user = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else ""
        self.sender, self.timeout = sender, float(timeout)

    def __repr__(self):
        return f"SmtpChannel({self.scheme}://{self.host}:{self.port})"

    def _connect(self):
        context = ssl.create_default_context()
        if self.scheme == "smtps":
            conn = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            conn = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            if self.scheme == "smtp+starttls":
                conn.starttls(context=context)
            if self._user:
                conn.login(self._user, self._password)
        except BaseException:
            _quit(conn)
            raise
        return conn

    def _compose(self, m):
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = m.to
        msg["Subject"] = m.subject
        msg["Date"] = formatdate(localtime=True)
        msg["Message-ID"] = f"<{m.ref}@linli>"
        # base64 keeps UTF-8 bodies safe through servers without 8BITMIME.
        msg.set_content(m.text, charset="utf-8", cte="base64")
        return msg

    def send(self, messages: list[Message]) -> list[Outcome]:
        if not messages:
            return []
        where = f"{self.name} {self.host}:{self.port}"
        try:
            conn = self._connect()
        except smtplib.SMTPAuthenticationError as e:
            raise ProviderDown(f"{where}: login refused ({e.smtp_code})") from None
        except (smtplib.SMTPException, OSError) as e:
            raise ProviderDown(f"{where}: cannot connect ({type(e).__name__}: {_snippet(str(e), 120)})") from None
        out = []
        try:
            for i, m in enumerate(messages):
                message_id = f"<{m.ref}@linli>"
                try:
                    msg = self._compose(m)
                except (ValueError, TypeError) as e:
                    out.append(Outcome(m.ref, False, error=f"bad address or header: {_snippet(str(e))}",
                                       permanent=True))
                    continue
                try:
                    conn.send_message(msg, from_addr=self.sender, to_addrs=[m.to])
                except smtplib.SMTPRecipientsRefused as e:
                    code, text = next(iter(e.recipients.values()), (550, b""))
                    if code == 421:
                        return self._dropped(out, messages[i:], where, f"server closing ({code})")
                    out.append(Outcome(m.ref, False, provider_ref=message_id, permanent=code >= 500,
                                       error=f"recipient refused: {code} {_decode(text)}"))
                except smtplib.SMTPDataError as e:
                    if e.smtp_code == 421:
                        return self._dropped(out, messages[i:], where, "server closing (421)")
                    out.append(Outcome(m.ref, False, provider_ref=message_id, permanent=e.smtp_code >= 500,
                                       error=f"message refused: {e.smtp_code} {_decode(e.smtp_error)}"))
                except (smtplib.SMTPNotSupportedError, UnicodeError) as e:   # e.g. a non-ASCII address
                    out.append(Outcome(m.ref, False, error=f"address not supported by the server: "
                                                           f"{_snippet(str(e), 160)}", permanent=True))
                except smtplib.SMTPSenderRefused as e:
                    return self._dropped(out, messages[i:], where, f"sender refused: {e.smtp_code} "
                                                                   f"{_decode(e.smtp_error)}")
                except (smtplib.SMTPException, OSError) as e:
                    return self._dropped(out, messages[i:], where, f"{type(e).__name__}: {_snippet(str(e), 120)}")
                else:
                    out.append(Outcome(m.ref, True, provider_ref=message_id))
        finally:
            _quit(conn)
        return out

    def _dropped(self, done, rest, where, reason):
        if not any(o.ok for o in done):
            raise ProviderDown(f"{where}: {reason}")
        error = f"connection to {where} lost mid-batch ({reason}); not sent"
        return done + [Outcome(m.ref, False, error=error) for m in rest]


def _decode(text):
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return _snippet(str(text))


def _quit(conn):
    try:
        conn.quit()
    except (smtplib.SMTPException, OSError):
        conn.close()


class WebhookChannel:
    """Webhooks: one `POST <m.to>` per message, JSON `{"ref", "subject", "text"}` in UTF-8.

    Headers: `X-Linli-Delivery: <ref>` (receivers de-duplicate on it) and, with a
    secret, `X-Linli-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>`
    (check it with `verify_receipt`). 2xx: ok; 408/429/5xx, timeouts and
    connection errors: retried; other statuses (4xx, 3xx, not followed): permanent.
    Every URL is a different receiver, so this channel never raises ProviderDown.
    Messages are posted one after another: a batch can take len(batch) × timeout.

    Only public addresses are called (services/notification/egress.py), checked after resolving
    the name and connected to as checked; `allow` lists networks an operator allows besides
    (`WEBHOOK_ALLOW_NETWORKS`). A receiver's answer body is never read: the error a delivery
    keeps is the status and a fixed reason, so a webhook cannot be used to read what answers there.
    """

    name = "webhook"
    channel = "webhook"

    def __init__(self, secret=None, timeout=5.0, allow=()):
        self._secret, self.timeout, self.allow = secret, float(timeout), tuple(allow or ())
        self.session = _checked_session(self.allow)

    def send(self, messages: list[Message]) -> list[Outcome]:
        return [self._send_one(m) for m in messages]

    def _send_one(self, m):
        parts = urlsplit(m.to or "")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return Outcome(m.ref, False, error="not an http(s) URL", permanent=True)
        try:   # saved before the rule, or by hand: the same rule as when saved, before any request
            egress.check_url(m.to, self.allow)
        except egress.Refused as e:
            return Outcome(m.ref, False, error=f"refused: the address {_snippet(str(e), 160)}", permanent=True)
        body = _json_bytes({"ref": m.ref, "subject": m.subject, "text": m.text})
        headers = {"Content-Type": "application/json; charset=utf-8", "X-Linli-Delivery": m.ref}
        if self._secret:
            headers["X-Linli-Signature"] = sign(self._secret, body)
        try:
            # requests' timeout is per socket read; the deadline bounds the whole post (a trickling receiver).
            with eventlet.Timeout(self.timeout * 2):
                resp = self.session.post(m.to, data=body, headers=headers, timeout=self.timeout,
                                         allow_redirects=False, stream=True)
                with resp:   # closed unread: nothing a receiver answers is kept or shown
                    status = resp.status_code
        except egress.Refused as e:   # the name resolved to an address that is not to be called
            return Outcome(m.ref, False, error=f"refused: {_snippet(str(e), 160)}", permanent=True)
        except (requests.Timeout, eventlet.Timeout):
            return Outcome(m.ref, False, error=f"no answer within {self.timeout:g}s")
        # The errors name the host only: a webhook's path and query may hold the receiver's secret.
        except requests.ConnectionError:
            return Outcome(m.ref, False, error=f"cannot connect to {parts.hostname}")
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as e:
            if isinstance(e, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                              requests.exceptions.InvalidSchema)):   # the address itself is wrong
                return Outcome(m.ref, False, error=f"{type(e).__name__}: not a usable URL", permanent=True)
            return Outcome(m.ref, False, error=f"{type(e).__name__} talking to {parts.hostname}")
        if 200 <= status < 300:
            return Outcome(m.ref, True, provider_ref=m.ref)
        return Outcome(m.ref, False, error=f"HTTP {status}: {_webhook_reason(status)}",
                       permanent=not (status >= 500 or status in (408, 429)))


def _webhook_reason(status):
    """A fixed reason per status class: the receiver's own words are never kept."""
    if 300 <= status < 400:
        return "redirects are not followed"
    if status in (408, 429):
        return "the receiver is busy, will retry"
    if status >= 500:
        return "the receiver failed, will retry"
    if 400 <= status < 500:
        return "the receiver refused the message"
    return "unexpected answer"


def build(config) -> dict[str, list]:
    """The adapters configured in `config`, by channel; a channel with none configured is absent."""
    adapters = {}
    for channel, providers in (config.get("NOTIFICATION_PROVIDERS") or {}).items():
        built = [HttpProvider(p["name"], channel, p["url"], p["token"], timeout=p.get("timeout", 10.0))
                 for p in providers]
        if built:
            adapters[channel] = built
    if config.get("SMTP_URL"):
        adapters["email"] = [SmtpChannel(config["SMTP_URL"], config.get("SMTP_FROM") or "linli@localhost")]
    adapters["webhook"] = [WebhookChannel(config.get("WEBHOOK_SECRET"), allow=config.get("WEBHOOK_ALLOW_NETWORKS"))]
    return adapters
