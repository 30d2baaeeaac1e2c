"""Webhooks may point only at public addresses: refused at registration (addresses and local
names in the URL; ports the egress does not let out) and at delivery (what the name resolves
to: tests/alerts/test_dispatch.py)."""
from __future__ import annotations

import pytest

from kades.alerts.destinations import is_public, registration_problem, url_problem

REFUSED = ["http://127.0.0.1:9/hook", "http://10.1.2.3/x", "https://172.20.0.5/x",
           "https://192.168.1.1/x", "http://169.254.169.254/latest/meta-data/",
           "http://100.64.0.1/x", "http://[::1]/x", "http://[fd00::1]/x",
           "http://[::ffff:10.0.0.1]/x", "http://0.0.0.0/x", "http://localhost:8080/x",
           "http://redis/x", "http://kades-api.kades.svc.cluster.local/x",
           "http://metadata.google.internal/x", "http://printer.local/x",
           # the numeric forms a resolver reads as IPv4 (inet_aton) and ip_address refuses
           "https://127.1/x", "https://0x7f.1/x", "https://2130706433/x",
           "https://10.1/x", "https://0xa9fea9fe/latest/meta-data/"]
ACCEPTED = ["https://example.org/hook", "https://hooks.slack.com/services/x",
            "http://8.8.8.8/x", "https://[2606:4700:4700::1111]/x", "https://8.8.2056/x",
            "https://123.example.com/x", "https://1.2.3.4.5/x"]
# URLs no client can use: urllib or httpx raise on them, or the host is no host name.
UNUSABLE = ["http://[x/", "http://example.com:99999/", "http://example.com:abc/",
            "http://example.com:0/", "http://xn--ls8h.la/", "http://\u2603.net/",
            "http://exa mple.com/", "http://ex%41mple.com/", "http://a..b/", "ftp://example.com/",
            "http:///path", "https://0177.0.0.1/x",
            # a label past 63 characters or a name past 253: the resolver refuses them
            "https://" + "a" * 64 + ".com/", "https://" + "abcdefghi." * 26 + "com/"]


@pytest.mark.parametrize("url", REFUSED)
def test_registration_refuses_private_addresses_and_local_names(url):
    assert registration_problem(url)


@pytest.mark.parametrize("url", ACCEPTED)
def test_registration_accepts_public_addresses_and_names(url):
    assert registration_problem(url) is None


@pytest.mark.parametrize("url", UNUSABLE)
def test_a_url_no_client_can_use_is_named(url):
    assert url_problem(url)


@pytest.mark.parametrize("url", ACCEPTED + REFUSED + [
    "https://user:pw@example.com:8443/a?b#c", "http://b\u00fccher.de/x", "http://my_host.example.com/",
    "https://" + "a" * 63 + ".com./"])
def test_a_usable_url_passes_whether_or_not_it_is_public(url):
    assert url_problem(url) is None


def test_registration_refuses_a_port_the_egress_does_not_let_out():
    """alert-dispatch's NetworkPolicy lets TCP 80 and 443 out: a webhook on 8443 was
    registered (201), and every attempt timed out until it was dead."""
    assert "port 8443" in registration_problem("https://hooks.example.com:8443/x")
    assert "port 25" in registration_problem("http://8.8.8.8:25/x")
    assert registration_problem("https://hooks.example.com:443/x") is None
    assert registration_problem("http://hooks.example.com:80/x") is None
    # a private address is named for what it is, whatever its port
    assert "not a public address" in registration_problem("http://10.0.0.1:8080/x")


def test_public_means_globally_routable():
    assert is_public("1.1.1.1") and is_public("2606:4700:4700::1111")
    assert not any(is_public(a) for a in ("10.0.0.1", "127.0.0.1", "224.0.0.1", "fe80::1%eth0"))


@pytest.mark.parametrize("address", [
    "64:ff9b::a9fe:a9fe",   # NAT64 of 169.254.169.254, the cloud metadata endpoint
    "64:ff9b::a00:1",       # NAT64 of 10.0.0.1
    "64:ff9b:1::808:808",   # a network's own NAT64 prefix
    "2002:a9fe:a9fe::",     # 6to4 of 169.254.169.254
    "::a9fe:a9fe",          # IPv4-compatible 169.254.169.254
    "::ffff:0:7f00:1",      # SIIT's IPv4-translated 127.0.0.1
    "::ffff:0:a9fe:a9fe",   # and 169.254.169.254
    "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # Teredo, its client 10.0.0.1
    "192.0.0.192", "198.18.0.1", "192.88.99.1",
    "fec0::1", "3fff::1", "5f00::1"])  # site-local, documentation, SRv6: is_global's in 3.11
def test_an_address_carrying_a_private_one_is_not_public(address):
    """Python's is_global judged these IPv6 forms by their own prefix (and calls 192.0.0.192
    global in 3.11): a webhook could reach the metadata endpoint through a NAT64 gateway."""
    assert not is_public(address)
    host = f"[{address}]" if ":" in address else address
    assert registration_problem(f"http://{host}/x")


@pytest.mark.parametrize("address", ["64:ff9b::808:808", "2002:808:808::", "::ffff:1.1.1.1"])
def test_an_address_carrying_a_public_one_is_public(address):
    assert is_public(address)
