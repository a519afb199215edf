"""The daily digest: non-urgent notices held until the digest hour go out as one message per person and channel.

At the digest hour the held deliveries of each person and channel are bundled: one new delivery
lists their subjects (the `digest` template), and the bundled ones point at it. A person with a
single held notice gets it as it is. Bundling locks what it bundles (SKIP LOCKED), so two
passes never bundle the same notice twice.
"""
import json

from services.notification import rules, sender, store


def bundle(tx, limit=500):
    """Bundle what is due; returns (digests created, notices released as they are)."""
    made = released = 0
    renderer, cache = sender.Renderer(), {}
    for g in tx.all(store.DUE_DIGESTS, (limit,)):
        ids = [r["id"] for r in tx.all(store.LOCK_HELD, (g["ids"],))]
        if not ids:
            continue
        if len(ids) == 1:
            tx.execute(store.RELEASE_HELD, (ids,))
            released += 1
            continue
        notice_ids = [n for i, n in zip(g["ids"], g["notice_ids"]) if i in set(ids)]
        notices = {n["id"]: n for n in tx.all(store.NOTICES, (sorted(set(notice_ids)),))}
        pairs = sorted({(n["template_code"], n["template_version"]) for n in notices.values()})
        texts = {(t["code"], t["version"], t["locale"]): t
                 for t in tx.all(store.TEMPLATE_TEXTS, ([p[0] for p in pairs], [p[1] for p in pairs]))}
        reader = tx.one(store.READER, (g["resident_id"],))
        items = [{"subject": renderer.render(notices[n], reader["locale"], reader["name"], texts, cache)[0]}
                 for n in notice_ids]
        template = tx.one(store.TEMPLATE, ("digest",))
        row = tx.one(store.ADD_NOTICE, {
            "trigger_key": f"digest:{g['resident_id']}:{g['channel']}:{ids[0]}", "kind": "digest",
            "category": "digest", "priority": "normal", "template_code": "digest",
            "template_version": template["version"], "context": json.dumps({"items": items}, ensure_ascii=False),
            "target": None, "channels": [g["channel"]], "scope_code": g["community_code"], "created_by": "system"})
        if row is None:  # bundled before (the key names the first item)
            continue
        delivery = tx.one(store.ADD_DELIVERY, (row["id"], g["resident_id"], g["community_code"], g["channel"],
                                               rules.RANK["normal"]))
        tx.execute(store.BUNDLE, (delivery["id"], ids))
        made += 1
    if made or released:
        tx.execute(store.WAKE)
    return made, released
