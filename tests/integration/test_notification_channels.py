"""The delivery channel adapters against real local servers (no mocks of requests or smtplib).

The test process is eventlet-monkey-patched (tests/conftest.py); the stand-ins in
tests/integration/providers.py must work there, and some tests below prove that
they do not block the hub.
"""
import hashlib
import itertools
import json
import socket
import subprocess
import sys
import time

import eventlet
import pytest

from services.notification import channels as channels_mod, egress
from services.notification.channels import (
    HttpProvider,
    Message,
    Outcome,
    ProviderDown,
    SmtpChannel,
    WebhookChannel,
    build,
    sign,
    verify_receipt,
)
from tests.integration.providers import FakeProvider, LocalSmtp, WebhookReceiver

TYPHOON = "台风“梅花”预计今晚登陆，请关好门窗。"
SECRET = "w" * 40
LOCAL = ("127.0.0.1/32",)   # the local stand-in receivers; what WEBHOOK_ALLOW_NETWORKS would say


def msg(ref, to="+8613800000001", subject="通知", text=TYPHOON):
    return Message(ref=str(ref), to=to, subject=subject, text=text)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def provider():
    with FakeProvider("alpha", token="tok-1") as p:
        yield p


@pytest.fixture
def sms(provider):
    return HttpProvider("alpha", "sms", provider.url, "tok-1", timeout=5)


def test_the_test_process_is_monkey_patched():
    assert eventlet.patcher.is_monkey_patched("socket")
    assert eventlet.patcher.is_monkey_patched("thread")


# --- HttpProvider -------------------------------------------------------------------------------

def test_http_provider_accepts_rejects_and_reports_missing(provider, sms):
    provider.reject("+8613800000002", error="号码不存在")
    provider.skip("+8613800000003")
    out = sms.send([msg(1), msg(2, to="+8613800000002"), msg(3, to="+8613800000003"), msg(4)])

    assert [o.ref for o in out] == ["1", "2", "3", "4"]
    assert out[0] == Outcome("1", True, provider_ref="alpha-1")
    assert out[3] == Outcome("4", True, provider_ref="alpha-2")
    assert not out[1].ok and out[1].permanent and "号码不存在" in out[1].error
    assert out[2] == Outcome("3", False, error="no answer from alpha for this message", permanent=False)

    (request,) = provider.requests
    assert request["headers"]["Authorization"] == "Bearer tok-1"
    assert request["headers"]["Content-Type"] == "application/json; charset=utf-8"
    assert request["headers"]["Idempotency-Key"] == hashlib.sha256(b"1,2,3,4").hexdigest()
    assert json.loads(request["body"])["channel"] == "sms"


def test_chinese_text_travels_as_utf8(provider, sms):
    out = sms.send([msg(7, subject="防汛通知")])
    assert out[0].ok
    assert provider.received == [{"ref": "7", "to": "+8613800000001", "subject": "防汛通知", "text": TYPHOON}]
    assert TYPHOON.encode("utf-8") in provider.requests[0]["body"]


def test_netrc_credentials_are_never_applied(provider, hooks, tmp_path, monkeypatch):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    assert HttpProvider("alpha", "sms", provider.url, "tok-1", timeout=5).send([msg(1)])[0].ok
    assert provider.requests[0]["headers"]["Authorization"] == "Bearer tok-1"
    assert WebhookChannel(allow=LOCAL).send([msg(2, to=hooks.url)])[0].ok
    assert "Authorization" not in hooks.received[0]["headers"]


def test_empty_batch_makes_no_request(provider, sms):
    assert sms.send([]) == []
    assert provider.requests == []


def test_provider_deduplicates_a_retried_ref(provider, sms):
    first = sms.send([msg(1)])
    again = sms.send([msg(1), msg(2)])
    assert again[0].provider_ref == first[0].provider_ref
    assert [m["ref"] for m in provider.received] == ["1", "2"] and provider.duplicates == 1


@pytest.mark.parametrize("status", [500, 503, 429, 403])
def test_provider_level_statuses_raise_provider_down(provider, sms, status):
    provider.fail_next(1, status=status)
    with pytest.raises(ProviderDown, match=f"alpha.*{status}"):
        sms.send([msg(1)])
    assert sms.send([msg(1)])[0].ok          # the next request is answered again
    provider.always_fail(503)
    with pytest.raises(ProviderDown):
        sms.send([msg(2)])
    provider.recover()
    assert sms.send([msg(2)])[0].ok


def test_wrong_token_is_provider_down(provider):
    wrong = HttpProvider("alpha", "sms", provider.url, "not-the-token", timeout=5)
    with pytest.raises(ProviderDown, match="alpha: HTTP 401"):
        wrong.send([msg(1)])
    assert provider.received == []


@pytest.mark.parametrize("status", [400, 413, 422])
def test_batch_refused_with_4xx_is_permanent_for_every_message(provider, sms, status):
    provider.fail_next(1, status=status)
    out = sms.send([msg(1), msg(2)])
    assert [o.ok for o in out] == [False, False]
    assert all(o.permanent and f"HTTP {status}" in o.error and "alpha says" in o.error for o in out)


def test_timeout_is_provider_down(provider):
    provider.slow(5.0)
    impatient = HttpProvider("alpha", "sms", provider.url, "tok-1", timeout=0.3)
    started = time.monotonic()
    with pytest.raises(ProviderDown, match="alpha: no answer within 0.3s"):
        impatient.send([msg(1)])
    # Behaviour, not speed: it gave up instead of waiting for the 5 s answer.
    assert time.monotonic() - started < 4


def test_refused_connection_is_provider_down():
    nobody = HttpProvider("ghost", "wechat", f"http://127.0.0.1:{free_port()}/send", "t", timeout=2)
    with pytest.raises(ProviderDown, match="ghost: cannot connect"):
        nobody.send([msg(1, to="openid-1")])


def test_malformed_answers_are_provider_down():
    bad_answers = iter([b"not json", b'{"results": 3}', b'{"results": [{"ref": "1", "status": "maybe"}]}'])

    def app(environ, start_response):
        environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response("200 OK", [("Content-Type", "application/json")])
        return [next(bad_answers)]

    listener = eventlet.listen(("127.0.0.1", 0))
    server = eventlet.spawn(eventlet.wsgi.server, listener, app, log_output=False)
    try:
        odd = HttpProvider("odd", "sms", f"http://127.0.0.1:{listener.getsockname()[1]}/", "t", timeout=2)
        for expected in ("not JSON", "no results list", "malformed result"):
            with pytest.raises(ProviderDown, match=f"odd: .*{expected}"):
                odd.send([msg(1)])
    finally:
        server.kill()


def test_fake_provider_serves_concurrent_batches_without_blocking_the_hub(provider):
    provider.slow(1.0)
    adapters = [HttpProvider("alpha", "sms", provider.url, "tok-1", timeout=10) for _ in range(4)]
    started = time.monotonic()
    threads = [eventlet.spawn(a.send, [msg(i)]) for i, a in enumerate(adapters)]
    results = [t.wait() for t in threads]
    assert all(r[0].ok for r in results)
    # Behaviour, not speed: four 1 s answers overlapped; one after another would take 4 s.
    assert time.monotonic() - started < 3.0


def test_standalone_fake_provider_accepts_big_batches():
    proc = subprocess.Popen([sys.executable, "-m", "tests.integration.providers", "--port", "0", "--token", "T"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("READY http://127.0.0.1:"), line
        url = line.split(" ", 1)[1]
        bench = HttpProvider("bench", "sms", url, "T", timeout=5)
        batch = [msg(i) for i in range(1000)]
        for _ in range(5):                     # how fast is bench/bench_notification.py's business
            out = bench.send(batch)
        assert len(out) == 1000 and all(o.ok for o in out) and out[-1].provider_ref == "fake-5000"
        stats = bench.session.get(url.rsplit("/", 1)[0] + "/stats", timeout=5).json()
        assert stats == {"requests": 5, "messages": 5000}
        with pytest.raises(ProviderDown, match="401"):
            HttpProvider("bench", "sms", url, "wrong", timeout=5).send(batch[:1])
    finally:
        proc.terminate()
        proc.wait(10)


# --- SmtpChannel --------------------------------------------------------------------------------

@pytest.fixture
def smtp():
    with LocalSmtp() as server:
        yield server


def test_smtp_delivers_chinese_subject_and_body(smtp):
    channel = SmtpChannel(smtp.url, "linli@example.org", timeout=5)
    out = channel.send([msg(11, to="wang@example.org", subject="台风预警：请关好门窗")])
    assert out == [Outcome("11", True, provider_ref="<11@linli>")]

    (got,) = smtp.messages
    assert got.rcpt_tos == ["wang@example.org"] and got.mail_from == "linli@example.org"
    assert got.message["Subject"] == "台风预警：请关好门窗"
    assert got.message["Message-ID"] == "<11@linli>"
    assert got.message["From"] == "linli@example.org" and got.message["To"] == "wang@example.org"
    assert got.message["Date"]
    assert got.message.get_content_charset() == "utf-8"
    assert got.message.get_content().rstrip("\n") == TYPHOON


def test_smtp_refused_recipient_is_permanent_and_the_rest_are_delivered(smtp):
    smtp.refuse("nobody@example.org")
    smtp.refuse("full@example.org", code=452)
    channel = SmtpChannel(smtp.url, "linli@example.org", timeout=5)
    out = channel.send([msg(1, to="a@example.org"), msg(2, to="nobody@example.org"),
                        msg(3, to="full@example.org"), msg(4, to="b@example.org")])
    assert [o.ok for o in out] == [True, False, False, True]
    assert out[1].permanent and "550" in out[1].error
    assert not out[2].permanent and "452" in out[2].error
    assert [m.rcpt_tos for m in smtp.messages] == [["a@example.org"], ["b@example.org"]]


def test_smtp_bad_address_is_permanent_and_injects_nothing(smtp):
    channel = SmtpChannel(smtp.url, "linli@example.org", timeout=5)
    out = channel.send([msg(1, to="a@example.org\r\nBcc: spy@example.org"), msg(2, to="王@例子.中国"),
                        msg(3, to="b@example.org")])
    assert not out[0].ok and out[0].permanent
    assert out[1].ok                      # this server speaks SMTPUTF8
    assert out[2].ok
    assert [m.rcpt_tos for m in smtp.messages] == [["王@例子.中国"], ["b@example.org"]]


def test_smtp_non_ascii_address_without_smtputf8_is_permanent():
    with LocalSmtp(smtputf8=False) as server:
        out = SmtpChannel(server.url, "linli@example.org", timeout=5).send(
            [msg(1, to="王@例子.中国"), msg(2, to="b@example.org")])
        assert not out[0].ok and out[0].permanent and out[1].ok
        assert [m.rcpt_tos for m in server.messages] == [["b@example.org"]]


def test_smtp_connection_lost_mid_batch_keeps_what_was_accepted(smtp):
    smtp.drop_after(2)
    channel = SmtpChannel(smtp.url, "linli@example.org", timeout=5)
    out = channel.send([msg(i, to=f"r{i}@example.org") for i in range(1, 5)])
    assert [o.ok for o in out] == [True, True, False, False]
    assert not any(o.permanent for o in out[2:]) and "lost mid-batch" in out[2].error
    assert len(smtp.messages) == 2


def test_smtp_lost_before_anything_was_accepted_is_provider_down(smtp):
    smtp.drop_after(0)
    with pytest.raises(ProviderDown, match="421"):
        SmtpChannel(smtp.url, "linli@example.org", timeout=5).send([msg(1, to="a@example.org")])


def test_smtp_server_down_is_provider_down():
    channel = SmtpChannel(f"smtp://127.0.0.1:{free_port()}", "linli@example.org", timeout=2)
    with pytest.raises(ProviderDown, match="cannot connect"):
        channel.send([msg(1, to="a@example.org")])


def test_local_smtp_does_not_block_the_hub(smtp):
    ticks = []

    def ticker():
        while True:
            ticks.append(time.monotonic())
            eventlet.sleep(0.01)

    t = eventlet.spawn(ticker)
    try:
        eventlet.sleep(0.1)
        before = len(ticks)
        SmtpChannel(smtp.url, "linli@example.org", timeout=5).send(
            [msg(i, to=f"r{i}@example.org") for i in range(20)])
        eventlet.sleep(0.1)
        assert len(ticks) - before >= 10
        assert max(b - a for a, b in itertools.pairwise(ticks)) < 0.5
    finally:
        t.kill()
    assert len(smtp.messages) == 20


def test_smtp_url_forms():
    plain = SmtpChannel("smtp://mail.example.org", "a@b.cn")
    assert (plain.scheme, plain.host, plain.port, plain._user) == ("smtp", "mail.example.org", 25, None)
    tls = SmtpChannel("smtp+starttls://u%40x:p%3Aw%2F@mail.example.org", "a@b.cn")
    assert (tls.port, tls._user, tls._password) == (587, "u@x", "p:w/")
    assert SmtpChannel("smtps://h:2465", "a@b.cn").port == 2465
    assert SmtpChannel("smtps://h", "a@b.cn").port == 465
    with pytest.raises(ValueError):
        SmtpChannel("http://h", "a@b.cn")


# --- WebhookChannel -----------------------------------------------------------------------------

@pytest.fixture
def hooks():
    with WebhookReceiver() as receiver:
        yield receiver


def test_webhook_posts_signed_json(hooks):
    out = WebhookChannel(SECRET, allow=LOCAL).send([msg(21, to=hooks.url_for("/linli"), subject="防汛")])
    assert out == [Outcome("21", True, provider_ref="21")]
    (got,) = hooks.received
    assert got["path"] == "/linli"
    assert got["json"] == {"ref": "21", "subject": "防汛", "text": TYPHOON}
    assert got["headers"]["X-Linli-Delivery"] == "21"
    assert verify_receipt(SECRET, got["body"], got["headers"]["X-Linli-Signature"])
    assert not verify_receipt("x" * 40, got["body"], got["headers"]["X-Linli-Signature"])
    assert not verify_receipt(SECRET, got["body"] + b" ", got["headers"]["X-Linli-Signature"])


def test_webhook_without_secret_is_unsigned(hooks):
    assert WebhookChannel(allow=LOCAL).send([msg(1, to=hooks.url)])[0].ok
    assert "X-Linli-Signature" not in hooks.received[0]["headers"]


def serve(app):
    listener = eventlet.listen(("127.0.0.1", 0))
    return listener.getsockname()[1], eventlet.spawn(eventlet.wsgi.server, listener, app, log_output=False)


@pytest.mark.parametrize("status", ["502 Bad Gateway", "404 Not Found", "200 OK"])
def test_webhook_never_reads_or_keeps_the_receivers_answer(status):
    def app(environ, start_response):
        environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response(status, [("Content-Type", "application/json")])
        yield b'{"nodes": [{"code": "310110012001", "name": "internal"}]}'
        yield from (b"x" * 65536 for _ in range(1000))          # then 64 MB, streamed

    port, server = serve(app)
    try:
        started = time.monotonic()
        (o,) = WebhookChannel(timeout=2, allow=LOCAL).send([msg(1, to=f"http://127.0.0.1:{port}/")])
        assert time.monotonic() - started < 2                   # closed unread, not drained
    finally:
        server.kill()
    expected = {"502 Bad Gateway": Outcome("1", False, error="HTTP 502: the receiver failed, will retry"),
                "404 Not Found": Outcome("1", False, error="HTTP 404: the receiver refused the message",
                                         permanent=True),
                "200 OK": Outcome("1", True, provider_ref="1")}[status]
    assert o == expected


def test_webhook_follows_no_redirect():
    hit, answer = [], []

    def inside(environ, start_response):
        hit.append(environ["PATH_INFO"])
        start_response("200 OK", [])
        return [b"internal"]

    def redirecting(environ, start_response):
        environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response(answer[-1], [("Location", f"http://127.0.0.1:{inside_port}/api/v1/nodes")])
        return [b""]

    inside_port, inside_server = serve(inside)
    port, server = serve(redirecting)
    try:
        for status in ("307 Temporary Redirect", "302 Found", "301 Moved Permanently", "308 Permanent Redirect"):
            answer.append(status)
            (o,) = WebhookChannel(timeout=2, allow=LOCAL).send([msg(1, to=f"http://127.0.0.1:{port}/hook")])
            assert o == Outcome("1", False, error=f"HTTP {status[:3]}: redirects are not followed", permanent=True)
    finally:
        server.kill()
        inside_server.kill()
    assert hit == []


@pytest.mark.parametrize("url", ["http://127.0.0.1:{port}/api/v1/nodes", "http://2130706433:{port}/",
                                 "http://0x7f.1:{port}/", "http://[::ffff:127.0.0.1]:{port}/",
                                 "http://localhost:{port}/"])
def test_webhook_to_an_inside_address_is_refused_before_any_request(hooks, url):
    """The SSRF of issue 19, at the channel: a URL saved before the rule (or by hand) is refused when sent."""
    (o,) = WebhookChannel(timeout=2).send([msg(1, to=url.format(port=hooks.port))])
    assert not o.ok and o.permanent and o.error.startswith("refused: ") and "inside the network" in o.error
    assert hooks.received == []


def test_dns_rebinding_cannot_swap_in_loopback(hooks, monkeypatch):
    """The name answers a public address first and 127.0.0.1 after: the channel resolves once, checks,
    and connects to what it checked, so the second answer is never asked for and nothing reaches the
    loopback listener. (Connecting to the public address is stubbed: it refuses, as if down.)"""
    real_getaddrinfo, real_open = socket.getaddrinfo, channels_mod._open_socket
    asked, connected = [], []

    def rebinding(host, port, family=0, kind=0, *rest):
        if host != "hooks.example.org":
            return real_getaddrinfo(host, port, family, kind, *rest)
        asked.append(host)
        ip = "93.184.215.14" if len(asked) == 1 else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))]

    def recording(answers, timeout, options):
        connected.extend(sa for _, _, _, sa in answers)
        if any(sa[0] == "93.184.215.14" for _, _, _, sa in answers):
            raise ConnectionRefusedError("stub: the public receiver is down")
        return real_open(answers, timeout, options)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    monkeypatch.setattr(channels_mod, "_open_socket", recording)
    channel = WebhookChannel(timeout=2)
    url = f"http://hooks.example.org:{hooks.port}/linli"
    (first,) = channel.send([msg(1, to=url)])
    assert first == Outcome("1", False, error="cannot connect to hooks.example.org")   # retried later
    assert asked == ["hooks.example.org"] and connected == [("93.184.215.14", hooks.port)]
    (retry,) = channel.send([msg(1, to=url)])   # a retry resolves afresh, and the new answer is checked
    assert retry == Outcome("1", False, error="refused: hooks.example.org resolves to a loopback address",
                            permanent=True)
    assert len(asked) == 2 and connected == [("93.184.215.14", hooks.port)]
    assert hooks.received == []


def test_webhook_ignores_proxy_settings_from_the_environment(hooks, monkeypatch):
    """A proxy would resolve and reach the address itself, past the check: webhooks go direct."""
    with WebhookReceiver() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.base_url)
        monkeypatch.setenv("http_proxy", proxy.base_url)
        assert WebhookChannel(timeout=2, allow=LOCAL).send([msg(1, to=hooks.url)])[0].ok
        assert proxy.received == [] and len(hooks.received) == 1


def test_webhook_failures(hooks):
    channel = WebhookChannel(SECRET, timeout=2, allow=LOCAL)
    hooks.fail_next(1, status=500)
    server_error = channel.send([msg(1, to=hooks.url)])[0]
    assert not server_error.ok and not server_error.permanent and "HTTP 500" in server_error.error
    for status, permanent in ((404, True), (410, True), (408, False), (429, False), (503, False)):
        hooks.fail_next(1, status=status)
        (o,) = channel.send([msg(status, to=hooks.url)])
        assert (o.ok, o.permanent) == (False, permanent), status
    (o,) = channel.send([msg(9, to="ftp://example.org/x")])
    assert o == Outcome("9", False, error="not an http(s) URL", permanent=True)
    assert len(hooks.received) == 6                     # no request for the ftp URL
    (down,) = channel.send([msg(10, to=f"http://127.0.0.1:{free_port()}/")])
    assert not down.ok and not down.permanent
    assert channel.send([msg(11, to=hooks.url)])[0].ok


def test_sign_and_verify_receipt():
    body = json.dumps({"id": "alpha-1", "status": "delivered"}).encode()
    header = sign(SECRET, body)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert verify_receipt(SECRET, body, header)
    assert verify_receipt(SECRET.encode(), body, header)
    for bad in ("", None, header[7:], "sha1=" + header[7:], "sha256=zz", header[:-1] + "0"):
        assert not verify_receipt(SECRET, body, bad)
    assert not verify_receipt(None, body, header)


# --- build --------------------------------------------------------------------------------------

def test_build_from_config():
    adapters = build({
        "NOTIFICATION_PROVIDERS": {
            "sms": [{"name": "aliyun", "url": "https://sms.example.cn/send", "token": "a"},
                    {"name": "tencent", "url": "https://sms2.example.cn/send", "token": "b", "timeout": 3}],
            "wechat": [],
        },
        "SMTP_URL": "smtp+starttls://u:p@mail.example.org",
        "SMTP_FROM": "linli@example.org",
        "WEBHOOK_SECRET": SECRET,
    })
    assert set(adapters) == {"sms", "email", "webhook"}
    assert [(a.name, a.channel, a.timeout) for a in adapters["sms"]] == [("aliyun", "sms", 10.0),
                                                                         ("tencent", "sms", 3.0)]
    (email,) = adapters["email"]
    assert (email.channel, email.port, email.sender) == ("email", 587, "linli@example.org")
    (hook,) = adapters["webhook"]
    assert (hook.name, hook.channel) == ("webhook", "webhook")

    bare = build({"NOTIFICATION_PROVIDERS": {}, "SMTP_URL": None, "SMTP_FROM": "a@b.cn", "WEBHOOK_SECRET": None})
    assert set(bare) == {"webhook"}
