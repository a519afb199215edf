"""The sender: takes due deliveries in batches and hands them to the channel adapters.

One pass claims up to `batch` due deliveries, most urgent first (FOR UPDATE SKIP LOCKED, so a
cancellation waits for the batch in flight instead of racing it), renders each from its notice
and the template version the notice names, and sends them per channel:
- the inbox needs no adapter: its deliveries are delivered at once;
- a channel's token bucket grants what its rate allows; the rest wait, without an attempt counted;
- the first provider not resting is used; a provider that fails `failover_after` times in a row
  rests and the next one takes over (rules.ProviderHealth);
- a failure a retry could change is retried with jittered exponential back-off until
  `max_attempts`, then the delivery fails; a refusal (bad number, 4xx) fails it at once.
What every delivery came to is written back in one statement, in the claiming transaction.

Sending is at least once: a crash after a provider accepted a batch and before the commit sends
it again on restart. Every message carries its delivery id (`ref`, and an Idempotency-Key per
batch) so that providers and receivers can drop the repeat.
"""
import logging
import time
from datetime import datetime, timedelta, timezone

from jinja2 import meta
from nameko.extensions import DependencyProvider
from prometheus_client import Counter, Gauge

from services.notification import channels as adapters_mod, rules, store, templates
from shared.db import make_pool
from shared.protect import Vault
from shared.wakeup import WakeLoop
from shared import clock

log = logging.getLogger(__name__)

DELIVERIES = Counter("linli_notification_deliveries_total", "Deliveries settled by the sender",
                     ["channel", "status"])
PROVIDER_FAILURES = Counter("linli_notification_provider_failures_total",
                            "Provider calls that failed as a whole", ["channel", "provider"])
QUEUED = Gauge("linli_notification_queue_depth", "Deliveries due and not yet sent", ["channel"])
QUEUE_AGE = Gauge("linli_notification_queue_oldest_seconds", "How long the oldest due delivery has waited",
                  ["channel"])

ADDRESS = "notification.address"  # the associated data of sealed addresses
CHUNK = 1000                      # messages per provider call


def clean(text, limit=500):
    """Text from a provider, fit for the database: no NUL, valid UTF-8, bounded."""
    if text is None:
        return None
    return str(text).replace("\x00", " ").encode("utf-8", "replace").decode("utf-8")[:limit]


def _redact(error, address):
    """A provider's or mail server's error may quote the address: keep it out of what staff read."""
    return error.replace(address, "<address>") if error and address else error


class Renderer:
    """Renders deliveries from their notice, caching what does not depend on the person."""

    def __init__(self):
        self.compiled = {}
        self.personal = {}

    def _templates(self, code, version, locale, texts):
        key = (code, version, locale)
        if key not in self.compiled:
            row = texts.get(key) or texts.get((code, version, "zh"))
            if row is None:
                return None
            sources = (row["subject"], row["body"])
            self.compiled[key] = [templates.ENV.from_string(s) for s in sources]
            # A template that never names the person renders once per notice, not once per person.
            self.personal[key] = any("name" in meta.find_undeclared_variables(templates.ENV.parse(s))
                                     for s in sources)
        return key

    def render(self, notice, locale, name, texts, cache):
        key = self._templates(notice["template_code"], notice["template_version"], locale, texts)
        if key is None:
            raise LookupError(f"template {notice['template_code']} v{notice['template_version']} is missing")
        ck = (notice["id"], key, name if self.personal[key] else None)
        if ck not in cache:
            subject, body = self.compiled[key]
            context = {**notice["context"], "name": name}
            cache[ck] = (subject.render(**context), body.render(**context))
        return cache[ck]


class Sender:
    """One sender's state: adapters per channel, provider health and rate buckets (kept across passes)."""

    def __init__(self, adapters, vault, rates=None, max_attempts=6, retry_base=2.0, failover_after=3,
                 provider_rest=60.0, batch=1000, clock=time.monotonic, rng=None):
        self.adapters, self.vault = adapters, vault
        self.max_attempts, self.retry_base, self.batch, self.clock = max_attempts, retry_base, batch, clock
        self.rng = rng
        self.health = rules.ProviderHealth(threshold=failover_after, rest=provider_rest)
        self.buckets = {ch: rules.TokenBucket(rate=r, burst=max(r, 1.0), last=clock())
                        for ch, r in (rates or {}).items()}
        self.renderer = Renderer()

    @classmethod
    def from_config(cls, cfg, **kw):
        return cls(adapters_mod.build(cfg), Vault.from_config(cfg), rates=cfg.get("CHANNEL_RATES"),
                   max_attempts=cfg.get("NOTIFY_MAX_ATTEMPTS", 6), retry_base=cfg.get("NOTIFY_RETRY_BASE", 2.0),
                   failover_after=cfg.get("NOTIFY_FAILOVER_AFTER", 3), **kw)

    # -- one pass --------------------------------------------------------------------------------

    def send_once(self, conn):
        """Claim, send and settle one batch in the caller's transaction; returns how many were claimed."""
        rows = conn.execute(store.CLAIM, (self.batch,)).fetchall()
        if not rows:
            return 0
        notices = {n["id"]: n for n in conn.execute(store.NOTICES, (sorted({r["notice_id"] for r in rows}),))}
        pairs = sorted({(n["template_code"], n["template_version"]) for n in notices.values()})
        texts = {(t["code"], t["version"], t["locale"]): t
                 for t in conn.execute(store.TEMPLATE_TEXTS, ([p[0] for p in pairs], [p[1] for p in pairs]))}
        now = datetime.now(timezone.utc)
        results, cache, by_channel = [], {}, {}
        for r in rows:
            notice = notices[r["notice_id"]]
            if r["subscriber_status"] != "active":  # left or died since the notice was recorded
                results.append(self._final(r, "cancelled", f"the resident is {r['subscriber_status']}"))
                continue
            if notice["priority"] != "critical":
                # Preferences may have changed, and a backlog or a retry may reach into quiet hours.
                prefs = rules.Preferences(frozenset(tuple(x.split(":", 1)) for x in r["opted_out"] or ()
                                                    if ":" in x), r["quiet_start"], r["quiet_end"])
                if not rules.wanted(prefs, notice["category"], r["channel"], notice["priority"]):
                    results.append(self._final(r, "cancelled", "opted out since the notice was recorded"))
                    continue
                due = rules.send_at(prefs, notice["priority"], now.astimezone(clock.zone()))
                if due > now:
                    results.append(self._later(r, due))
                    continue
            try:
                subject, text = self.renderer.render(notices[r["notice_id"]], r["locale"], r["name"], texts, cache)
            except Exception as exc:  # templates are checked at save; this is the last line of defence
                results.append(self._final(r, "failed", f"cannot render: {exc}"[:300]))
                continue
            if r["channel"] == "inbox":
                results.append(self._final(r, "delivered", None, provider="inbox"))
                continue
            if r["address_cipher"] is None:
                results.append(self._final(r, "failed", f"no {r['channel']} address"))
                continue
            address = self.vault.open(r["address_cipher"], ADDRESS)
            by_channel.setdefault(r["channel"], []).append(
                (r, adapters_mod.Message(ref=str(r["id"]), to=address, subject=subject, text=text)))
        for channel, items in by_channel.items():
            results.extend(self._send_channel(channel, items, now))
        self._settle(conn, results)
        return len(rows)

    def _send_channel(self, channel, items, now):
        providers = self.adapters.get(channel) or []
        if not providers:
            return [self._final(r, "failed", f"no {channel} provider is configured") for r, _ in items]
        bucket = self.buckets.get(channel)
        allowed = len(items) if bucket is None else bucket.grant(self.clock(), len(items))
        out = []
        if allowed < len(items):  # over the rate: wait for the bucket, no attempt counted
            wait = (len(items) - allowed) / bucket.rate
            out += [self._later(r, now + timedelta(seconds=wait)) for r, _ in items[allowed:]]
        items = items[:allowed]
        for start in range(0, len(items), CHUNK):
            out += self._send_chunk(channel, providers, items[start:start + CHUNK], now)
        return out

    def _send_chunk(self, channel, providers, chunk, now):
        by_name = {p.name: p for p in providers}
        provider = by_name[self.health.pick(list(by_name), self.clock())]
        try:
            outcomes = provider.send([m for _, m in chunk])
        except adapters_mod.ProviderDown as exc:
            self.health.record(provider.name, False, self.clock())
            PROVIDER_FAILURES.labels(channel, provider.name).inc()
            log.warning("notification: %s provider %s failed: %s", channel, provider.name, exc)
            return [self._retry(r, provider.name, str(exc), now) for r, _ in chunk]
        self.health.record(provider.name, True, self.clock())
        by_ref = {o.ref: o for o in outcomes}
        out = []
        for r, m in chunk:
            o = by_ref.get(m.ref)
            if o is not None and o.ok:
                out.append(self._final(r, "sent", None, provider=provider.name, provider_ref=o.provider_ref))
            elif o is not None and o.permanent:
                out.append(self._final(r, "failed", _redact(o.error, m.to), provider=provider.name))
            else:
                out.append(self._retry(r, provider.name, _redact(o.error, m.to) if o else "no answer for this message",
                                       now))
        return out

    # -- outcomes --------------------------------------------------------------------------------

    def _final(self, r, status, error, provider=None, provider_ref=None):
        return (r["id"], status, 1, provider, clean(provider_ref, 200), clean(error), None, r["channel"])

    def _later(self, r, due):
        return (r["id"], "queued", 0, None, None, None, due, r["channel"])

    def _retry(self, r, provider, error, now):
        attempt = r["attempts"] + 1
        if rules.give_up(attempt, self.max_attempts):
            return self._final(r, "failed", f"gave up after {attempt} attempts: {error}", provider=provider)
        kw = {"rng": self.rng} if self.rng else {}
        wait = max(rules.backoff(attempt, base=self.retry_base, **kw), 0.01)
        return (r["id"], "queued", 1, provider, None, clean(error or ""), now + timedelta(seconds=wait), r["channel"])

    def _settle(self, conn, results):
        cols = list(zip(*results))
        due = [d or datetime.now(timezone.utc) for d in cols[6]]
        conn.execute(store.SETTLE, (list(cols[0]), list(cols[1]), list(cols[2]), list(cols[3]), list(cols[4]),
                                    list(cols[5]), due))
        # Receipts that came in before this batch was settled (a fast provider) apply now.
        sent = [r[0] for r in results if r[4] is not None]
        if sent:
            conn.execute(store.APPLY_EARLY_RECEIPTS, (sent,))
        counts = {}
        for r in results:
            counts[(r[7], r[1])] = counts.get((r[7], r[1]), 0) + 1
        for (channel, status), n in counts.items():
            DELIVERIES.labels(channel, status).inc(n)


class Dispatcher:
    """Runs a Sender until stopped: drain the queue, then wait.

    Wakes on NOTIFY notification_deliveries (sent when a notice commits) or every `poll` seconds,
    which is also when retries and quiet-hour deliveries come due.
    """

    def __init__(self, dsn, schema, sender, poll=1.0):
        self.dsn, self.schema, self.sender, self.poll = dsn, schema, sender, poll
        # One connection: one greenthread drains the queue (shared/budget.py counts it).
        self.pool = make_pool(dsn, schema, max_size=1, name=f"sender-{schema}")
        self.loop = WakeLoop(dsn, "notification_deliveries", poll)
        self.last_status = 0.0

    def drain(self):
        total = 0
        while True:
            with self.pool.connection() as conn:
                with conn.transaction():
                    n = self.sender.send_once(conn)
            total += n
            if n < self.sender.batch:
                return total

    def tick(self):
        n = self.drain()
        now = time.monotonic()
        if now - self.last_status > 5:
            self.last_status = now
            with self.pool.connection() as conn:
                depth = {r["channel"]: r for r in conn.execute(store.QUEUE_DEPTH)}
            for channel in rules.CHANNELS:
                QUEUED.labels(channel).set(depth[channel]["n"] if channel in depth else 0)
                QUEUE_AGE.labels(channel).set(float(depth[channel]["oldest"]) if channel in depth else 0)
        return n

    def run(self):
        self.pool.open(wait=True, timeout=30)
        self.loop.run(self.tick, self._failed)

    def _failed(self, exc, backoff):
        log.exception("notification sender: %s; retrying in %.1fs", exc, backoff)
        return True

    def stop(self):
        self.loop.stop()
        self.pool.close()


class DeliveryWorker(DependencyProvider):
    """Runs the service's Dispatcher in a managed greenthread while the service runs."""

    def setup(self):
        cfg = self.container.config
        self.dispatcher = Dispatcher(cfg["DATABASE_URL"], self.container.service_name, Sender.from_config(cfg),
                                     poll=cfg.get("NOTIFY_POLL_SECONDS", 1.0))

    def start(self):
        self.gt = self.container.spawn_managed_thread(self.dispatcher.run)

    def stop(self):
        self.gt.kill()  # before closing its connections (see shared.outbox.OutboxRelay.stop)
        self.dispatcher.stop()

    kill = stop

    def get_dependency(self, worker_ctx):
        return self.dispatcher
