"""Demo notices: what a street's notification desk has sent on a winter day, through the real use cases.

Run once the services are up (`make up` does it after the gateway is ready), because subscribers
come from the registry's events: a care reminder to elderly residents living alone, an emergency
broadcast about gas works approved by a second person and sent to one community, and a draft
broadcast left waiting for approval. Only the in-app inbox is used: a local instance has no SMS or
WeChat provider configured. Idempotent by request id.
"""
from services.notification import broadcasts, notices

AUTHOR = {"actor": "demo:长海路街道 应急办 王建国", "role": "street_admin"}
CHECKER = {"actor": "demo:长海路街道 分管副主任 李明", "role": "street_admin"}


def load_notices(tx, nodes, instance_code, communities, now, digest_hour):
    author, checker = {**AUTHOR, "scope": instance_code}, {**CHECKER, "scope": instance_code}
    if tx.one("SELECT EXISTS (SELECT 1 FROM broadcasts) AS any")["any"]:
        return {}
    care = notices.targeted(tx, nodes, {
        "prefix": instance_code, "tags": ["elderly_alone"], "title": "寒潮防寒提醒", "channels": ["inbox"],
        "message": "本周有寒潮，最低气温零下3度。请注意保暖，使用取暖器时远离可燃物；如需帮助请拨打居委会电话。",
        "priority": "urgent", "request_id": "demo-care-cold-wave"}, author, now, digest_hour)
    gas = broadcasts.create(tx, nodes, {
        "prefix": communities[0]["code"], "title": "燃气管道抢修停气通知", "channels": ["inbox"], "request_id": "demo-gas",
        "message": "因燃气管道抢修，今日14时至18时本小区暂停供气。请关闭燃气阀门，恢复供气前勿使用明火。"}, author)
    broadcasts.submit(tx, gas["id"], author)
    broadcasts.approve(tx, nodes, gas["id"], checker, now, digest_hour)
    draft = broadcasts.create(tx, nodes, {
        "prefix": instance_code, "title": "防汛防台预警", "channels": ["inbox", "wechat", "sms"],
        "request_id": "demo-typhoon",
        "message": "气象台发布台风蓝色预警，请居民收好阳台物品，低洼地区做好防积水准备。"}, author)
    broadcasts.submit(tx, draft["id"], author)
    return {"care_reminders": care["deliveries_added"], "broadcasts_sent": 1, "broadcasts_awaiting_approval": 1}
