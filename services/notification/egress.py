"""Where a webhook may point: public unicast addresses only, unless an operator allows a network.

A webhook is posted from inside the street's network, to a URL a community worker typed. Left
alone, that URL can name the gateway on 127.0.0.1, the database, the cloud's metadata service on
169.254.169.254 or anything else behind the firewall (server-side request forgery). So:

- when an address is saved (`check_url`), a host that is an IP address in any spelling the C
  library accepts (`2130706433`, `0x7f.1`, `0177.0.0.1`, `127.1`, `[::ffff:127.0.0.1]`) must be
  public, and names that can only be internal (`localhost`, single labels, `.local`, `.internal`)
  are refused;
- when it is called (`resolve`), the name is resolved once, every address it resolves to must be
  public, and the caller connects to exactly those addresses, so a DNS answer that changes between
  the check and the connection (rebinding) cannot slip an internal address in.

`WEBHOOK_ALLOW_NETWORKS` (shared/config.py, empty by default) names networks an operator allows
anyway, e.g. an internal receiver; with it set, internal-looking names are left to the resolve-time
check against those networks. Pure rules, except `resolve`, whose resolver is passed in.
"""
import functools
import ipaddress
import re
import socket
from urllib.parse import urlsplit

from shared.errors import ValidationFailed

__all__ = ["Refused", "check_url", "literal", "networks", "refusal", "resolve"]

# A part of an IPv4 address as inet_aton reads it: hex, octal or decimal; one to four parts.
_PART = re.compile(r"(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)\Z")
_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\Z")
_INTERNAL_SUFFIXES = ("localhost", "local", "internal", "localdomain", "arpa", "invalid")
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"),)
_V4_COMPATIBLE = ipaddress.ip_network("::/96")
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")


class Refused(ValidationFailed, ValueError):
    """An address this service will not call; the text says why, fit for a field error or a delivery's error.

    A refusal (422) wherever it surfaces, so one that escapes a caller's `except` is not a 500."""


@functools.lru_cache(maxsize=32)
def _networks(entries):
    return tuple(ipaddress.ip_network(e, strict=False) for e in entries)


def networks(entries):
    """The allow-list as networks (config keeps them as text, validated at start)."""
    return _networks(tuple(entries or ()))


def _number(part):
    if part[:2].lower() == "0x":
        return int(part[2:], 16)
    if len(part) > 1 and part[0] == "0":
        return int(part, 8)
    return int(part)


def _ipv4(host):
    """`host` as inet_aton reads it (what getaddrinfo would connect to), or None if it is no such number."""
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(_PART.match(p) for p in parts):
        return None
    values = [_number(p) for p in parts]
    if any(v > 255 for v in values[:-1]) or values[-1] >= 256 ** (5 - len(parts)):
        return None
    total = 0
    for v in values[:-1]:
        total = total * 256 + v
    return ipaddress.IPv4Address(total * 256 ** (5 - len(parts)) + values[-1])


def literal(host):
    """The IP address `host` spells (IPv6 without brackets, IPv4 in any inet_aton form), or None for a name.
    A host that looks numeric but is no address (`999.1.1.1`, `08.1`) is refused: no real name ends in a number."""
    host = host.strip("[]")
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            raise Refused(f"{host} is not an IP address") from None
    bare = host[:-1] if host.endswith(".") else host
    ip = _ipv4(bare)
    if ip is None and re.match(r"[0-9]", bare.rsplit(".", 1)[-1]):
        raise Refused(f"{host} is neither a domain name nor an IP address")
    return ip


def refusal(ip, allow=()):
    """Why `ip` is not to be called (a few words), or None when it is a public unicast address or allowed."""
    ip = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return refusal(ip.ipv4_mapped, allow)      # the kernel connects to the IPv4 address itself
    if any(ip in net for net in networks(allow)):
        return None
    if ip.version == 6:
        if any(ip in net for net in _NAT64):        # a NAT64 gateway connects to the IPv4 address inside
            inner = refusal(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), allow)
            return inner and f"{inner} (through NAT64)"
        if ip.sixtofour is not None and refusal(ip.sixtofour, allow):
            return f"{refusal(ip.sixtofour, allow)} (through 6to4)"
        if ip in _V4_COMPATIBLE and not ip.is_unspecified and not ip.is_loopback:
            return "reserved"
        if ip.is_site_local:
            return "site-local"
    checks = (("unspecified", ip.is_unspecified or (ip.version == 4 and ip in _THIS_NETWORK)),
              ("loopback", ip.is_loopback), ("link-local", ip.is_link_local), ("multicast", ip.is_multicast),
              ("reserved", ip.is_reserved), ("private", ip.is_private), ("not public", not ip.is_global))
    return next((name for name, hit in checks if hit), None)


def _a(why):
    return "not a public" if why == "not public" else ("an " if why[0] in "aeiou" else "a ") + why


def _ip_words(host, ip, why):
    spelt = host.strip("[]")
    if spelt == str(ip) or ip.version == 6:
        return f"{spelt} is {_a(why)} address"
    return f"{spelt} is {ip}, {_a(why)} address"


def check_url(url, allow=()):
    """Refuse (raise Refused) a webhook URL that is not plain http(s) to a public host; None when it is."""
    if not isinstance(url, str) or any(ch <= " " or ch == "\x7f" or ch == "\\" for ch in url):
        raise Refused("must not contain spaces, control characters or backslashes")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise Refused("must be an http(s) URL")
    if "@" in parts.netloc:
        raise Refused("must not carry a user name or password (deliveries are signed instead)")
    try:
        parts.port
    except ValueError:
        raise Refused("has an invalid port") from None
    host = (parts.hostname or "").lower()
    if not host:
        raise Refused("has no host")
    ip = literal(host)
    if ip is not None:
        why = refusal(ip, allow)
        if why:
            raise Refused(f"must not point inside the network: {_ip_words(host, ip, why)}")
        return
    name = host[:-1] if host.endswith(".") else host
    try:
        labels = name.encode("idna").decode("ascii").split(".")
    except UnicodeError:
        raise Refused("has an invalid host name") from None
    if not all(_LABEL.match(label) for label in labels):
        raise Refused("has an invalid host name")
    if networks(allow):
        return   # an operator runs receivers inside; what the name resolves to is checked when it is called
    if len(labels) < 2 or labels[-1] in _INTERNAL_SUFFIXES or ".".join(labels[-2:]) == "home.arpa":
        raise Refused(f"must not point inside the network: {name} is not a public domain name")


def resolve(host, port, allow=(), family=socket.AF_UNSPEC, getaddrinfo=None):
    """The addresses to connect to for `host`, each checked: `[(family, type, proto, sockaddr)]`.

    Resolved once, here; the caller must connect to these sockaddrs and not resolve again. Every
    answer must pass (a name with one internal address among public ones is refused as a whole).
    """
    ip = literal(host)
    if ip is not None:
        answers = [(socket.AF_INET6, socket.SOCK_STREAM, 0, (str(ip), port, 0, 0)) if ip.version == 6
                   else (socket.AF_INET, socket.SOCK_STREAM, 0, (str(ip), port))]
    else:
        answers = [(af, kind, proto, sa) for af, kind, proto, _, sa in
                   (getaddrinfo or socket.getaddrinfo)(host, port, family, socket.SOCK_STREAM)]
        if not answers:
            raise OSError(f"{host} has no address")
    for _, _, _, sockaddr in answers:
        found = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
        why = refusal(found, allow)
        if why:
            # Which address is kept from the error text: staff should not map the inside through it.
            raise Refused(f"{host} resolves to {_a(why)} address" if ip is None else f"{host} is {_a(why)} address")
    return answers
