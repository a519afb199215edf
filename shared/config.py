"""Instance configuration: a YAML file overlaid with environment variables, validated at start.

Every level runs the same code; `LEVEL` and `NODE_CODE` say which node this
instance serves. A missing or malformed key stops the process with one line per
key, so an operator sees every mistake at once instead of one per restart.
"""
import base64
import binascii
import ipaddress
import json
import os

import yaml
from marshmallow import Schema, ValidationError, fields, validate, validates, validates_schema

from shared import clock

LEVEL_DIGITS = {"city": 4, "district": 6, "street": 9}

# Keys read from the environment (they override the YAML file).
ENV_KEYS = (
    "LEVEL", "NODE_CODE", "INSTANCE", "AMQP_URI", "RABBIT_MANAGEMENT_URL", "DATABASE_URL",
    "WEB_SERVER_ADDRESS", "METRICS_PORT", "LOG_LEVEL", "PSEUDONYM_SECRET",
    "DATA_ENCRYPTION_KEY", "SIGNING_KEY", "DB_POOL_MAX", "OUTBOX_POLL_SECONDS",
    "OUTBOX_BATCH", "MAX_DELIVERIES", "HANDOVER_SECRET", "PEER_KEYS", "POINTS_PENDING_DAYS",
    "NOTIFICATION_PROVIDERS", "SMTP_URL", "SMTP_FROM", "WEBHOOK_SECRET", "WEBHOOK_ALLOW_NETWORKS",
    "NOTIFY_MAX_ATTEMPTS",
    "CHANNEL_RATES", "DIGEST_HOUR", "NOTIFY_RETRY_BASE", "NOTIFY_FAILOVER_AFTER", "NOTIFY_POLL_SECONDS",
    "PARENT_KEY", "TIME_ZONE", "DB_POOL_MIN", "DB_POOL_SIZES", "DB_POOL_IDLE_SECONDS", "DB_POOL_TIMEOUT_SECONDS",
    "RPC_TIMEOUT_SECONDS", "RESEND_AFTER_SECONDS", "TRUSTED_PROXIES", "CONSOLE_DIR", "WORKER_WAIT_SECONDS",
)
PROVIDER_CHANNELS = ("sms", "wechat")
SERVICE_NAMES = ("registry", "points", "consultation", "notification", "aggregator", "gateway")


class ConfigError(Exception):
    """Raised with every problem found, one per line."""

    def __init__(self, problems):
        self.problems = problems
        lines = "\n".join(f"  {key}: {msg}" for key, msg in sorted(problems.items()))
        super().__init__(f"invalid configuration:\n{lines}")


def _fail(message):
    raise ValidationError(message)


def _key32(value, name):
    try:
        raw = base64.b64decode(value.encode() + b"=" * (-len(value) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError(f"{name} must be urlsafe base64")
    if len(raw) != 32:
        raise ValidationError(f"{name} must decode to 32 bytes, got {len(raw)}")


class JsonMapping(fields.Dict):
    """A mapping given in YAML, or as a JSON object in an environment variable."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise ValidationError("must be a JSON object")
        return super()._deserialize(value, attr, data, **kwargs)


class TextList(fields.List):
    """A list given in YAML, or comma-separated in an environment variable."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        return super()._deserialize(value, attr, data, **kwargs)


def _network(value):
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValidationError(f"{value!r} is not a network like 10.20.0.0/16 or 127.0.0.1/32 ({exc})")


class ConfigSchema(Schema):
    LEVEL = fields.String(required=True, validate=validate.OneOf(list(LEVEL_DIGITS)))
    NODE_CODE = fields.String(required=True, validate=validate.Regexp(r"^\d+$", error="must be digits only"))
    INSTANCE = fields.String(load_default=None)
    AMQP_URI = fields.String(required=True, validate=validate.Regexp(r"^(py)?amqps?://", error="must start with amqp:// or amqps://"))
    RABBIT_MANAGEMENT_URL = fields.String(load_default="http://guest:guest@localhost:15672")
    DATABASE_URL = fields.String(required=True, validate=validate.Regexp(r"^postgres(ql)?://", error="must start with postgresql://"))
    WEB_SERVER_ADDRESS = fields.String(load_default="0.0.0.0:8000")
    METRICS_PORT = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(0, 65535))
    LOG_LEVEL = fields.String(load_default="INFO", validate=validate.OneOf(["DEBUG", "INFO", "WARNING", "ERROR"]))
    PSEUDONYM_SECRET = fields.String(required=True, validate=validate.Length(min=32, error="must be at least {min} characters"))
    DATA_ENCRYPTION_KEY = fields.String(required=True)
    SIGNING_KEY = fields.String(required=True)
    # Shared by every street of a city (unlike PSEUDONYM_SECRET): it keys the hash by which a street
    # that receives a departing resident's points balance recognises them.
    HANDOVER_SECRET = fields.String(required=True, validate=validate.Length(min=32, error="must be at least {min} characters"))
    # Street code -> Ed25519 public key of the streets whose points handovers this instance accepts.
    PEER_KEYS = JsonMapping(keys=fields.String(validate=validate.Regexp(r"^\d{9}$", error="must be a 9-digit street code")),
                            values=fields.String(), load_default=dict)
    POINTS_PENDING_DAYS = fields.Integer(load_default=30, validate=validate.Range(1, 365))
    # Notification: HTTP providers per channel, tried in order (the next takes over while one rests):
    # {"sms": [{"name": "aliyun", "url": "https://…/send", "token": "…", "receipt_secret": "…"}], "wechat": […]}.
    NOTIFICATION_PROVIDERS = JsonMapping(keys=fields.String(validate=validate.OneOf(PROVIDER_CHANNELS)),
                                         values=fields.List(fields.Dict()), load_default=dict)
    # smtp://user:password@host:port, smtp+starttls://… or smtps://…; no SMTP_URL, no email.
    SMTP_URL = fields.String(load_default=None, allow_none=True,
                             validate=validate.Regexp(r"^(smtp|smtps|smtp\+starttls)://[^/\s]+$",
                                                      error="must look like smtp://[user:password@]host[:port]"))
    SMTP_FROM = fields.String(load_default="linli@localhost", validate=validate.Email())
    # Signs webhook deliveries (X-Linli-Signature: sha256=HMAC of the body).
    WEBHOOK_SECRET = fields.String(load_default=None, allow_none=True,
                                   validate=validate.Length(min=32, error="must be at least {min} characters"))
    # Networks webhooks may reach although they are not public (an internal receiver), e.g. 10.20.0.0/16.
    # Empty: webhooks reach public addresses only (services/notification/egress.py).
    WEBHOOK_ALLOW_NETWORKS = TextList(fields.String(validate=_network), load_default=list)
    NOTIFY_MAX_ATTEMPTS = fields.Integer(load_default=6, validate=validate.Range(1, 20))
    # Sends per second per channel (a token bucket each); a channel not named is not limited.
    CHANNEL_RATES = JsonMapping(keys=fields.String(validate=validate.OneOf(["sms", "wechat", "email", "webhook"])),
                                values=fields.Float(validate=validate.Range(0.1, 1e6)),
                                load_default=lambda: {"sms": 500.0, "wechat": 500.0, "email": 20.0, "webhook": 50.0})
    # Seconds before the first retry (doubling, with jitter); failures in a row before a provider rests.
    NOTIFY_RETRY_BASE = fields.Float(load_default=2.0, validate=validate.Range(0.01, 3600))
    NOTIFY_FAILOVER_AFTER = fields.Integer(load_default=3, validate=validate.Range(1, 100))
    NOTIFY_POLL_SECONDS = fields.Float(load_default=1.0, validate=validate.Range(0.05, 60))
    # The Ed25519 public key of the level above (district or city); directives it signs are obeyed.
    PARENT_KEY = fields.String(load_default=None, allow_none=True)
    # The instance's one time zone: every date a person sends or sees is a date here (shared/clock.py).
    TIME_ZONE = fields.String(load_default=clock.DEFAULT_ZONE,
                              validate=lambda name: clock.valid_zone(name) or _fail("not a known IANA time zone"))
    # The hour (instance time) at which each day's digest of non-urgent notices goes out.
    DIGEST_HOUR = fields.Integer(load_default=19, validate=validate.Range(0, 23))
    # The connection budget (shared/budget.py): each process's workers share a pool of at most
    # DB_POOL_MAX connections (DB_POOL_SIZES names services that need another size, e.g. the gateway,
    # which holds one only for a token or session lookup, or a sign-in's few statements; never while a
    # password is checked), never more than nameko's max_workers can use. The
    # pool keeps DB_POOL_MIN and closes the others once idle for DB_POOL_IDLE_SECONDS; a worker waits
    # up to DB_POOL_TIMEOUT_SECONDS for a connection before answering 503.
    DB_POOL_MAX = fields.Integer(load_default=4, validate=validate.Range(1, 200))
    DB_POOL_MIN = fields.Integer(load_default=0, validate=validate.Range(0, 200))
    DB_POOL_SIZES = JsonMapping(keys=fields.String(), values=fields.Integer(validate=validate.Range(1, 200)),
                                load_default=dict)
    DB_POOL_IDLE_SECONDS = fields.Float(load_default=60.0, validate=validate.Range(1, 3600))
    DB_POOL_TIMEOUT_SECONDS = fields.Float(load_default=10.0, validate=validate.Range(0.1, 300))
    # Every RPC's deadline (shared/rpc.py): a service that does not answer in time is a 504 (outcome
    # unknown), not a hang.
    RPC_TIMEOUT_SECONDS = fields.Float(load_default=10.0, validate=validate.Range(0.1, 300))
    RESEND_AFTER_SECONDS = fields.Float(load_default=30.0, validate=validate.Range(1, 86400))
    # How long a gateway request waits for a free worker before it is answered 503 (nothing done).
    WORKER_WAIT_SECONDS = fields.Float(load_default=5.0, validate=validate.Range(0.1, 300))
    # The gateway: the proxies in front of it (an ingress), as addresses or networks ("10.0.0.0/8"),
    # whose X-Forwarded-For and X-Forwarded-Proto are believed, so the sign-in limits count the person's
    # address and the cookie is Secure behind TLS; empty: no such header is believed.
    TRUSTED_PROXIES = fields.String(load_default="")
    # Where the console's built pages are (console/dist of the source tree unless set; the image's own).
    CONSOLE_DIR = fields.String(load_default=None)
    OUTBOX_POLL_SECONDS = fields.Float(load_default=1.0, validate=validate.Range(0.01, 60))
    OUTBOX_BATCH = fields.Integer(load_default=500, validate=validate.Range(1, 10000))
    MAX_DELIVERIES = fields.Integer(load_default=5, validate=validate.Range(1, 100))

    @validates("TRUSTED_PROXIES")
    def _check_proxies(self, value, **_):
        try:
            [ipaddress.ip_network(part.strip(), strict=False) for part in value.split(",") if part.strip()]
        except ValueError as exc:
            raise ValidationError(f"must be addresses or networks, comma-separated: {exc}")

    @validates("DATA_ENCRYPTION_KEY")
    def _check_data_key(self, value, **_):
        _key32(value, "DATA_ENCRYPTION_KEY")

    @validates("NOTIFICATION_PROVIDERS")
    def _check_providers(self, value, **_):
        for channel, providers in value.items():
            names = set()
            for n, p in enumerate(providers):
                missing = [k for k in ("name", "url", "token") if not isinstance(p.get(k), str) or not p[k]]
                if missing:
                    raise ValidationError(f"{channel}[{n}] needs {', '.join(missing)}")
                if not p["url"].startswith(("http://", "https://")):
                    raise ValidationError(f"{channel}[{n}].url must be an http(s) URL")
                if p["name"] in names:
                    raise ValidationError(f"{channel}: provider name {p['name']} is used twice")
                names.add(p["name"])

    @validates("SIGNING_KEY")
    def _check_signing_key(self, value, **_):
        _key32(value, "SIGNING_KEY")

    @validates("DB_POOL_SIZES")
    def _check_pool_sizes(self, value, **_):
        unknown = sorted(set(value) - set(SERVICE_NAMES))
        if unknown:
            raise ValidationError(f"no service named {', '.join(unknown)} (one of {', '.join(SERVICE_NAMES)})")

    @validates_schema(skip_on_field_errors=False)
    def _check_pool_min(self, data, **_):
        if data.get("DB_POOL_MIN", 0) > data.get("DB_POOL_MAX", 4):
            raise ValidationError("must not exceed DB_POOL_MAX", "DB_POOL_MIN")

    @validates_schema(skip_on_field_errors=False)
    def _check_code_length(self, data, **_):
        level, code = data.get("LEVEL"), data.get("NODE_CODE")
        if level in LEVEL_DIGITS and code and len(code) != LEVEL_DIGITS[level]:
            raise ValidationError(
                f"a {level} code has {LEVEL_DIGITS[level]} digits, got {len(code)}", "NODE_CODE")


def load(path=None, environ=None):
    """Return the validated config dict (nameko takes it as its config)."""
    environ = os.environ if environ is None else environ
    path = path or environ.get("LINLI_CONFIG")
    raw = {}
    if path:
        try:
            with open(path, encoding="utf-8") as fh:
                raw = yaml.safe_load(fh) or {}
        except OSError as exc:
            raise ConfigError({"LINLI_CONFIG": f"cannot read {path}: {exc.strerror}"})
        if not isinstance(raw, dict):
            raise ConfigError({"LINLI_CONFIG": f"{path} must hold a mapping"})
    known = {k: v for k, v in raw.items() if k in ConfigSchema().fields}
    extra = {k: v for k, v in raw.items() if k not in known}
    for key in ENV_KEYS:
        if environ.get(key) not in (None, ""):
            known[key] = environ[key]
    try:
        cfg = ConfigSchema().load({k: (str(v) if k in ("NODE_CODE",) else v) for k, v in known.items()})
    except ValidationError as exc:
        raise ConfigError({k: "; ".join(v) if isinstance(v, list) else str(v)
                           for k, v in exc.normalized_messages().items()})
    clock.configure(cfg["TIME_ZONE"])
    cfg["INSTANCE"] = cfg["INSTANCE"] or f"{cfg['LEVEL']}-{cfg['NODE_CODE']}"
    # Keys we do not own (nameko's own settings, e.g. max_workers) pass through.
    return {**extra, **cfg}
