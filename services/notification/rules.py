"""Rules of reaching residents: pure, no I/O.

Who gets what, when and how often:
- a resident may opt out of any category except critical notices, per channel;
- quiet hours hold non-critical notices until they end; critical ones go at once;
- a failed delivery is retried with exponential back-off and jitter, a bounded number of times;
- each channel has a rate limit (a token bucket), and a provider that keeps failing is passed over
  for the next one until it has rested;
- an emergency broadcast needs a second person's approval before it goes out (two-person rule),
  can be cancelled, and keeps every edit as a version;
- non-urgent notices wait for the daily digest (the service bundles them per person and channel).
"""
import random
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from shared.states import refusal

CHANNELS = ("sms", "wechat", "email", "inbox", "webhook")
PRIORITIES = ("digest", "normal", "urgent", "critical")
RANK = {"critical": 0, "urgent": 1, "normal": 2, "digest": 3}   # the sender takes the lowest rank first
# held: a digest item waiting for the digest hour; bundled: it went out inside a digest.
# failed -> queued is an operator's resend; sent -> delivered/failed/read come from provider receipts.
DELIVERY_MOVES = {"held": {"queued", "bundled", "cancelled"}, "queued": {"sent", "delivered", "failed", "cancelled"},
                  "sent": {"delivered", "failed", "read"}, "delivered": {"read"}, "failed": {"queued"},
                  "read": set(), "cancelled": set(), "bundled": set()}
REACHED = ("sent", "delivered", "read")
BROADCAST_MOVES = {"draft": {"pending_approval", "cancelled"}, "pending_approval": {"approved", "rejected", "draft",
                                                                                   "cancelled"},
                   "approved": {"sending", "cancelled"}, "sending": {"sent", "cancelled"}, "rejected": {"draft"},
                   "sent": set(), "cancelled": set()}


def delivery_move(status, to):
    return refusal(DELIVERY_MOVES, "delivery", status, to)


def broadcast_move(status, to):
    return refusal(BROADCAST_MOVES, "broadcast", status, to)


# -- preferences and quiet hours --------------------------------------------------------------

@dataclass(frozen=True)
class Preferences:
    opted_out: frozenset = frozenset()        # (category, channel) pairs, or (category, "*") for every channel
    quiet_start: time | None = None            # e.g. 22:00
    quiet_end: time | None = None              # e.g. 07:00 (may cross midnight)


def wanted(prefs, category, channel, priority):
    """False if the resident opted out of this category on this channel; critical notices always go."""
    if priority == "critical":
        return True
    return (category, channel) not in prefs.opted_out and (category, "*") not in prefs.opted_out


def in_quiet_hours(prefs, at):
    if prefs.quiet_start is None or prefs.quiet_end is None or prefs.quiet_start == prefs.quiet_end:
        return False
    t = at.timetz().replace(tzinfo=None)
    if prefs.quiet_start < prefs.quiet_end:
        return prefs.quiet_start <= t < prefs.quiet_end
    return t >= prefs.quiet_start or t < prefs.quiet_end


def send_at(prefs, priority, at):
    """When a notice may go: now, or (non-critical, in quiet hours) when the quiet hours end."""
    if priority == "critical" or not in_quiet_hours(prefs, at):
        return at
    end = datetime.combine(at.date(), prefs.quiet_end, at.tzinfo)
    return end if end > at else end + timedelta(days=1)


# -- retries, rate limits, failover -----------------------------------------------------------

def backoff(attempt, base=1.0, cap=300.0, rng=random.random):
    """Seconds to wait before attempt number `attempt + 1` (attempt counts from 1): full jitter."""
    return rng() * min(cap, base * 2 ** (attempt - 1))


def give_up(attempt, max_attempts):
    return attempt >= max_attempts


@dataclass
class TokenBucket:
    """`rate` sends a second with bursts up to `burst`; take() says how long to wait (0 = go)."""
    rate: float
    burst: float
    tokens: float = None
    last: float = 0.0

    def __post_init__(self):
        if self.tokens is None:
            self.tokens = self.burst

    def take(self, now, n=1):
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= n:
            self.tokens -= n
            return 0.0
        return (n - self.tokens) / self.rate

    def grant(self, now, n):
        """How many of `n` sends may go now (whole tokens); the rest wait for the bucket to refill."""
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        granted = min(n, int(self.tokens))
        self.tokens -= granted
        return granted


@dataclass
class ProviderHealth:
    """A provider failing `threshold` times in a row rests for `rest` seconds; the next one is used."""
    threshold: int = 5
    rest: float = 60.0
    failures: dict = field(default_factory=dict)
    resting_until: dict = field(default_factory=dict)

    def pick(self, providers, now):
        """The first provider not resting, else the one whose rest ends soonest."""
        for p in providers:
            if self.resting_until.get(p, 0) <= now:
                return p
        return min(providers, key=lambda p: self.resting_until.get(p, 0))

    def record(self, provider, ok, now):
        if ok:
            self.failures[provider] = 0
            return
        self.failures[provider] = self.failures.get(provider, 0) + 1
        if self.failures[provider] >= self.threshold:
            self.resting_until[provider] = now + self.rest
            self.failures[provider] = 0


# -- the broadcast's two-person rule --------------------------------------------

def may_approve(broadcast, approver):
    """None if `approver` may approve, else why not: a second person, never the author of the version."""
    if approver == broadcast["created_by"] or approver == broadcast.get("edited_by"):
        return "a broadcast is approved by someone other than who wrote it (two-person rule)"
    return None


def rollup(deliveries):
    """Per community: how many people were targeted, reached (on any channel) and read it (on any channel).

    A person reached by SMS and WeChat counts once. The service computes this in SQL; this is its spec.
    """
    people = {}
    for d in deliveries:
        key = (d["community_code"], d["resident_id"])
        reached, read = people.get(key, (False, False))
        people[key] = (reached or d["status"] in REACHED, read or d["status"] == "read")
    out = {}
    for (community, _), (reached, read) in people.items():
        row = out.setdefault(community, {"targeted": 0, "reached": 0, "read": 0})
        row["targeted"] += 1
        row["reached"] += reached
        row["read"] += read
    return out
