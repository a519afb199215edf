"""Where a webhook may point (services/notification/egress.py): every spelling of an inside address is
refused when saved, and resolution checks every answer and hands back exactly what it checked."""
import socket

import pytest

from services.notification import egress
from services.notification.channels import _webhook_reason
from shared.config import ConfigError, load as load_config

INSIDE = [
    # IPv4 loopback in every form inet_aton (and so getaddrinfo) reads
    ("http://127.0.0.1:8001/api/v1/nodes", "loopback"),
    ("http://2130706433/", "loopback"),              # decimal
    ("http://0x7f.1/", "loopback"),                  # hex, two parts
    ("http://0x7f000001/", "loopback"),              # hex, one part
    ("http://0177.0.0.1/", "loopback"),              # octal
    ("http://017700000001/", "loopback"),            # octal, one part
    ("http://127.1/", "loopback"),                   # two parts
    ("http://0x7F.0.0.1./", "loopback"),             # upper-case hex, trailing dot
    ("http://127.8.9.10/", "loopback"),
    # IPv6 loopback, and IPv4 inside IPv6
    ("http://[::1]/", "loopback"),
    ("http://[0:0:0:0:0:0:0:1]:8001/", "loopback"),
    ("http://[::ffff:127.0.0.1]/", "loopback"),      # IPv4-mapped
    ("http://[::ffff:7f00:1]/", "loopback"),
    ("http://[::ffff:10.0.0.5]/", "private"),
    ("http://[64:ff9b::7f00:1]/", "loopback"),       # NAT64
    ("http://[2002:7f00:1::]/", "loopback"),         # 6to4
    ("http://[::127.0.0.1]/", "reserved"),           # IPv4-compatible (deprecated)
    # private
    ("http://10.0.0.5/admin", "private"),
    ("http://172.16.3.4/", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://0xc0a80101/", "private"),
    ("http://[fc00::1]/", "private"),
    ("http://[fd12:3456::1]/", "private"),
    ("http://[fec0::1]/", "site-local"),
    ("http://100.64.0.1/", "not a public"),          # carrier-grade NAT
    # link-local (the cloud's metadata service among them)
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://2852039166/", "link-local"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[fe80::1%25eth0]/", "link-local"),
    # multicast
    ("http://224.0.0.1/", "multicast"),
    ("http://239.255.255.250:1900/", "multicast"),
    ("http://[ff02::1]/", "multicast"),
    ("http://[ff0e::1]/", "multicast"),
    # reserved, broadcast
    ("http://240.0.0.1/", "reserved"),
    ("http://255.255.255.255/", "reserved"),
    # unspecified
    ("http://0.0.0.0:8001/", "unspecified"),
    ("http://0/", "unspecified"),
    ("http://0.1.2.3/", "unspecified"),
    ("http://[::]/", "unspecified"),
    # names that can only be inside
    ("http://localhost:8001/", "not a public domain name"),
    ("http://LOCALHOST./", "not a public domain name"),
    ("http://api.localhost/", "not a public domain name"),
    ("http://gateway:8000/", "not a public domain name"),
    ("http://rabbitmq/", "not a public domain name"),
    ("http://printer.local/", "not a public domain name"),
    ("http://metadata.google.internal/", "not a public domain name"),
    ("http://router.home.arpa/", "not a public domain name"),
]

MALFORMED = [
    ("http://999.1.1.1/", "neither a domain name nor an IP address"),
    ("http://0x/", "neither a domain name nor an IP address"),
    ("http://08.0.0.1/", "neither a domain name nor an IP address"),
    ("http://%31%32%37.0.0.1/", "neither a domain name nor an IP address"),
    ("http://8.8.8.8\\@127.0.0.1/", "backslashes"),
    ("http://hooks.example.org /x", "spaces"),
    ("http://user:pw@hooks.example.org/", "user name or password"),
    ("http://hooks.example.org@127.0.0.1/", "user name or password"),
    ("http://hooks.example.org:99999/", "invalid port"),
    ("ftp://hooks.example.org/", "http(s) URL"),
    ("http:///x", "http(s) URL"),
    ("http://bad_host!.example.org/", "invalid host name"),
]

PUBLIC = ["https://hooks.example.org/linli?key=1", "http://8.8.8.8/", "http://0x08080808/", "http://1.1.1.1./",
          "http://[2606:4700:4700::1111]:8443/x", "http://[::ffff:8.8.8.8]/", "http://[64:ff9b::808:808]/",
          "https://居委会.example.cn/hook", "http://1e100.net/"]


@pytest.mark.parametrize("url,why", INSIDE)
def test_an_inside_address_is_refused_when_saved(url, why):
    with pytest.raises(egress.Refused, match="must not point inside the network") as err:
        egress.check_url(url)
    assert why in str(err.value)


@pytest.mark.parametrize("url,why", MALFORMED)
def test_an_ambiguous_or_malformed_address_is_refused(url, why):
    with pytest.raises(egress.Refused) as err:
        egress.check_url(url)
    assert why in str(err.value)


@pytest.mark.parametrize("url", PUBLIC)
def test_a_public_address_is_accepted(url):
    assert egress.check_url(url) is None


@pytest.mark.parametrize("host,ip", [("2130706433", "127.0.0.1"), ("0x7f.1", "127.0.0.1"), ("0177.0.0.1", "127.0.0.1"),
                                     ("127.1", "127.0.0.1"), ("10.1", "10.0.0.1"), ("192.168.257", "192.168.1.1"),
                                     ("0", "0.0.0.0"), ("::ffff:127.0.0.1", "::ffff:7f00:1"),
                                     ("[::1]", "::1"), ("hooks.example.org", None), ("1e100.net", None)])
def test_literal_reads_addresses_as_the_c_library_does(host, ip):
    found = egress.literal(host)
    assert (str(found) if found is not None else None) == ip
    if ip and ":" not in ip and ":" not in host:
        assert socket.inet_ntoa(socket.inet_aton(host)) == ip     # the same reading as inet_aton


def test_the_allow_list_lets_an_operator_reach_an_internal_receiver_and_nothing_else():
    allow = ["127.0.0.1/32", "10.20.0.0/16"]
    assert egress.check_url("http://127.0.0.1:8001/hook", allow) is None
    assert egress.check_url("http://[::ffff:127.0.0.1]:8001/hook", allow) is None
    assert egress.check_url("http://10.20.3.4/hook", allow) is None
    assert egress.check_url("http://receiver.corp.internal/hook", allow) is None   # left to resolve time
    for url in ("http://127.0.0.2/", "http://10.21.0.1/", "http://169.254.169.254/", "http://[::1]/"):
        with pytest.raises(egress.Refused):
            egress.check_url(url, allow)
    assert egress.refusal("127.0.0.1", allow) is None and egress.refusal("127.0.0.2", allow) == "loopback"


def fake_resolver(*answers):
    """getaddrinfo answering each call with the next list of addresses (a rebinding DNS server)."""
    calls = []

    def getaddrinfo(host, port, family=0, kind=0, *rest):
        calls.append(host)
        ips = answers[min(len(calls), len(answers)) - 1]
        return [(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (ip, port, 0, 0) if ":" in ip else (ip, port)) for ip in ips]
    return getaddrinfo, calls


def test_resolve_checks_every_answer_and_returns_exactly_what_it_checked():
    getaddrinfo, calls = fake_resolver(["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"], ["127.0.0.1"])
    answers = egress.resolve("hooks.example.org", 443, getaddrinfo=getaddrinfo)
    assert [a[3][0] for a in answers] == ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]
    assert calls == ["hooks.example.org"]                 # resolved once: nothing asks again before connecting


@pytest.mark.parametrize("ips,why", [(["127.0.0.1"], "loopback"), (["93.184.215.14", "127.0.0.1"], "loopback"),
                                     (["::ffff:10.0.0.5"], "private"), (["fe80::1%eth0"], "link-local"),
                                     (["169.254.169.254"], "link-local"), (["0.0.0.0"], "unspecified")])
def test_resolve_refuses_a_name_with_any_inside_answer(ips, why):
    getaddrinfo, _ = fake_resolver(ips)
    with pytest.raises(egress.Refused, match=f"hooks.example.org resolves to an? {why} address"):
        egress.resolve("hooks.example.org", 80, getaddrinfo=getaddrinfo)


def test_resolve_reads_a_literal_itself_without_asking_the_resolver():
    getaddrinfo, calls = fake_resolver(["127.0.0.1"])
    assert egress.resolve("8.8.8.8", 80, getaddrinfo=getaddrinfo)[0][3] == ("8.8.8.8", 80)
    with pytest.raises(egress.Refused, match="0x7f.1 is a loopback address"):
        egress.resolve("0x7f.1", 80, getaddrinfo=getaddrinfo)
    assert calls == []
    assert egress.resolve("127.0.0.1", 80, ["127.0.0.0/8"], getaddrinfo=getaddrinfo)[0][3] == ("127.0.0.1", 80)


@pytest.mark.parametrize("status,reason", [(301, "redirects are not followed"), (404, "the receiver refused"),
                                           (429, "busy"), (502, "the receiver failed")])
def test_a_receivers_status_becomes_a_fixed_reason(status, reason):
    assert reason in _webhook_reason(status)


def test_the_allow_list_is_configured_explicitly_and_empty_by_default():
    from tests.unit.test_config import GOOD as env
    assert load_config(environ=env)["WEBHOOK_ALLOW_NETWORKS"] == []
    got = load_config(environ={**env, "WEBHOOK_ALLOW_NETWORKS": "127.0.0.1/32, 10.20.0.0/16"})
    assert got["WEBHOOK_ALLOW_NETWORKS"] == ["127.0.0.1/32", "10.20.0.0/16"]
    with pytest.raises(ConfigError, match="WEBHOOK_ALLOW_NETWORKS"):
        load_config(environ={**env, "WEBHOOK_ALLOW_NETWORKS": "10.20.0.1/16"})
