"""Where a webhook may point: public addresses only, so that nobody can use alert-dispatch
to reach the cluster's own services, a private network or the cloud metadata endpoint.

Checked twice: when a webhook is registered (an address written in the URL, or a local
name; and the port, one the egress NetworkPolicy lets out) and at each delivery, where the
client connects (what the name resolves to then, so a name re-pointed at an internal address
later is refused too; the connection goes to the address checked, kades.alerts.webhook_http).
Local development and tests deliver to receivers on 127.0.0.1: they set
KADES_WEBHOOK_ALLOW_PRIVATE=true. On a cluster the egress NetworkPolicy enforces the same
rule a second time.
"""
from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import urlsplit

import httpx

LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".svc", ".cluster.local", ".home.arpa")
# A host name as it goes on the wire (IDNA-encoded): labels of letters, digits, '-' and '_'.
_HOST_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?", re.IGNORECASE)
MAX_LABEL, MAX_HOST_NAME = 63, 253  # longer, no resolver looks the name up (Python raises)


def url_problem(url: str) -> str | None:
    """Why `url` can never be delivered to (no http(s), no host, a host or port no client
    can use), or None. Registration refuses such a URL; delivery checks it before anything
    else parses it, since urllib and httpx raise on some of them (a port past 65535, a
    bracket without an IPv6 address, a host httpx cannot encode)."""
    try:
        parts = urlsplit(url)
        port = parts.port
        parsed = httpx.URL(url)
        host, _ = parsed.raw_host.decode("ascii"), parsed.host  # .host decodes IDNA: may raise
    except (ValueError, httpx.InvalidURL, UnicodeError) as error:
        return f"not a usable URL: {error}"
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return "an http(s) URL with a host"
    if port == 0:
        return "port 0 cannot be connected to"
    try:
        ipaddress.ip_address(parts.hostname.split("%", 1)[0])
    except ValueError:
        if not _HOST_NAME.fullmatch(host):
            return f"{parts.hostname!r} is not a valid host name"
        labels = host.rstrip(".").split(".")
        if len(host.rstrip(".")) > MAX_HOST_NAME or max(map(len, labels)) > MAX_LABEL:
            return (f"{parts.hostname!r} is not a valid host name: labels of at most "
                    f"{MAX_LABEL} characters, {MAX_HOST_NAME} in all (RFC 1035)")
    return None


# IPv4 ranges no webhook may reach, whatever this Python's `is_global` says (3.11 calls
# 192.0.0.192 global): private, shared (CGNAT), loopback, link-local (the cloud metadata
# endpoint), IETF protocol assignments, documentation, benchmarking, relays, reserved.
_NOT_PUBLIC_V4 = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
    "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4"))
# IPv6 ranges this Python's `is_global` (3.11) still calls global: the old site-local
# (a network's own, as 10/8 is), documentation (RFC 9637) and SRv6 segment ids (RFC 9602).
_NOT_PUBLIC_V6 = tuple(ipaddress.ip_network(n) for n in ("fec0::/10", "3fff::/20", "5f00::/16"))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")         # a NAT64 gateway's IPv4 addresses
_SIIT = ipaddress.ip_network("::ffff:0:0:0/96")        # IPv4-translated (RFC 2765, SIIT)
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # a network's own translation


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries to (mapped, NAT64, SIIT's translated
    ::ffff:0:a.b.c.d, 6to4, Teredo's client, the old IPv4-compatible ::a.b.c.d): 64:ff9b::a9fe:a9fe reaches 169.254.169.254 through a
    NAT64 gateway, as IPv6-only cloud subnets have."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64 or ip in _SIIT or (int(ip) >> 32 == 0 and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    return ip.teredo[1] if ip.teredo is not None else None


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone
    if ip.version == 6:
        if ip in _NAT64_LOCAL or any(ip in network for network in _NOT_PUBLIC_V6):
            return False
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return is_public(str(embedded))
    elif any(ip in network for network in _NOT_PUBLIC_V4):
        return False
    return ip.is_global and not ip.is_multicast


# The ports alert-dispatch's egress NetworkPolicy lets out (knative/base/300-networkpolicies.yaml):
# a webhook on another was registered, and every attempt timed out until it was dead.
WEBHOOK_PORTS = (80, 443)


def registration_problem(url: str) -> str | None:
    """Why a webhook URL may not be registered, or None. Names are resolved at delivery."""
    parts = urlsplit(url)
    if problem := _host_problem((parts.hostname or "").lower().rstrip(".")):
        return problem
    if parts.port is not None and parts.port not in WEBHOOK_PORTS:
        return (f"port {parts.port}: webhooks are delivered on ports "
                f"{' and '.join(map(str, WEBHOOK_PORTS))} only (alert-dispatch's egress)")
    return None


def _host_problem(host: str) -> str | None:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        if (legacy := _legacy_ipv4(host)) is not None:
            return None if is_public(legacy) else f"{host} ({legacy}) is not a public address"
        if host == "localhost" or host.endswith(LOCAL_SUFFIXES) or "." not in host:
            return f"{host!r} is a local name; a webhook must point at a public address"
        return None
    return None if is_public(host) else f"{host} is not a public address"


def _legacy_ipv4(host: str) -> str | None:
    """The IPv4 address a resolver reads in the old numeric forms (127.1, 0x7f.0.0.1, 2130706433,
    0177.0.0.1), which ip_address refuses and getaddrinfo takes; None for a name."""
    if not re.fullmatch(r"(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}", host):
        return None
    try:
        return socket.inet_ntoa(socket.inet_aton(host))
    except OSError:
        return None
