"""Message templates: Jinja2 in a sandbox, versioned, Chinese by default with an English variant.

A template is checked when it is saved, not when a message goes out: it must parse, and render
without error against the sample context its category promises (a misspelt variable is an error,
not an empty string). Versions are only ever added; a delivery names the version it used.
"""
import re

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from services.notification import store
from shared.db import unique_races
from shared.errors import Conflict, NotFound, ValidationFailed

ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, trim_blocks=True)
# What each category's messages may refer to, with sample values for the save-time check.
SAMPLES = {
    "meetings": {"name": "陈志强", "meeting": {"title": "停车问题协商议事会", "starts_at": "2026-11-25 19:00",
                                              "place": "居委会二楼会议室"}},
    "matters": {"name": "陈志强", "matter": {"id": 12, "title": "小区夜间停车难", "status": "published",
                                            "status_name": "结果已公示"}},
    "points": {"name": "刘秀兰", "points": 30, "hours": "2.0", "served_on": "2026-11-20", "category": "平安巡逻"},
    "organizations": {"name": "刘秀兰", "organization": "长海一村平安志愿服务队", "notice": "周六上午8点集合"},
    "emergency": {"area": "长海一村", "message": "台风“梅花”预计今晚登陆，请关好门窗，非必要不外出。"},
    "general": {"name": "陈志强", "title": "社区通知", "message": "本周六上午社区开展义诊活动。"},
    "digest": {"name": "陈志强", "items": [{"subject": "议事会通知：停车问题协商议事会"}, {"subject": "服务积分到账 30 分"}]},
}
# Templates whose trigger gives less than their category's sample: checked against what they get.
TEMPLATE_SAMPLES = {"points_redeemed": {"name": "刘秀兰", "points": 200, "category": "家用急救包"}}
LOCALES = ("zh", "en")
# As the templates table allows; anything else would fail in the database, not answer 422.
CODE = re.compile(r"[a-z][a-z0-9_]{1,59}")


def _code(code):
    if not isinstance(code, str) or not CODE.fullmatch(code):
        raise ValidationFailed("not a template code", {"code": ["2 to 60 lowercase letters, digits or _, "
                                                                "starting with a letter"]})
    return code


def check(category, subject, body, code=None):
    """{field: [message]} for a template that would fail to render; empty if it is fine."""
    context = TEMPLATE_SAMPLES.get(code) or (SAMPLES.get(category) if isinstance(category, str) else None)
    if context is None:
        return {"category": [f"must be one of {', '.join(SAMPLES)}"]}
    errors = {}
    for name, text in (("subject", subject), ("body", body)):
        try:
            ENV.from_string(text).render(**context)
        except TemplateError as exc:
            errors[name] = [f"does not render: {exc.message or exc}"]
        except Exception as exc:  # {{ 1/0 }}, {{ name + 1 }}: the template's own arithmetic fails
            errors[name] = [f"does not render: {type(exc).__name__}: {exc}"]
    return errors


def render(subject, body, context):
    return ENV.from_string(subject).render(**context), ENV.from_string(body).render(**context)


def save(tx, code, data, actor):
    """Create the template or add a version of it; every locale given is checked before anything is written."""
    _code(code)
    if not isinstance(data, dict):
        raise ValidationFailed("the template must be an object", {"_schema": ["an object with category, zh, en"]})
    category = data.get("category")
    variants = {loc: data[loc] for loc in LOCALES if isinstance(data.get(loc), dict)}
    errors = {}
    if "zh" not in variants:
        errors["zh"] = ["a Chinese variant (subject, body) is required"]
    for loc, v in variants.items():
        for key in ("subject", "body"):
            if not isinstance(v.get(key), str) or not v[key].strip() or "\x00" in v[key]:
                errors[f"{loc}.{key}"] = ["must be non-blank text"]
            elif len(v[key]) > (200 if key == "subject" else 5000):
                errors[f"{loc}.{key}"] = ["too long"]
    existing = tx.one(store.TEMPLATE_FOR_UPDATE, (code,))
    category = existing["category"] if existing else category
    if not isinstance(category, str) or category not in SAMPLES:
        errors["category"] = [f"must be one of {', '.join(SAMPLES)}"]
    if not errors:
        for loc, v in variants.items():
            errors.update({f"{loc}.{k}": m for k, m in check(category, v["subject"], v["body"], code).items()})
    if errors:
        raise ValidationFailed("the template cannot be saved", errors)
    if existing is None:
        with unique_races({"templates_pkey": ("code", "the template was created meanwhile")}):
            if tx.one(store.ADD_TEMPLATE, (code, category)) is None:
                raise Conflict("the template was created meanwhile", {"code": ["created meanwhile: save again"]})
        version = 1
    else:
        version = tx.one(store.BUMP_TEMPLATE, (code,))["version"]
    for loc, v in variants.items():
        tx.execute(store.ADD_VERSION, (code, version, loc, v["subject"], v["body"], actor))
    tx.emit("template_saved", {"code": code, "category": category, "version": version, "locales": sorted(variants)})
    return get(tx, code)


def get(tx, code):
    _code(code)
    row = tx.one(store.TEMPLATE, (code,))
    if row is None:
        raise NotFound(f"no template {code}", {"code": [f"no template {code}"]})
    return {**row, "created_at": row["created_at"].isoformat(),
            "versions": [{**v, "created_at": v["created_at"].isoformat()} for v in tx.all(store.VERSIONS, (code,))]}
