"""The egress policy of webhooks on URLs and resolver answers alone (no network)."""

from __future__ import annotations

import pytest

from textnlp.egress import MAX_URL_LENGTH, EgressPolicy
from textnlp.errors import InvalidInput


def resolving_to(*addresses: str) -> EgressPolicy:
    return EgressPolicy(resolver=lambda host, port: list(addresses))


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",  # the cloud metadata service
        "http://10.0.0.5/hook",
        "http://172.16.3.4/hook",
        "http://192.168.1.1/hook",
        "http://100.64.0.1/hook",  # CGNAT
        "http://127.0.0.1:8080/hook",
        "http://0.0.0.0/hook",
        "http://224.0.0.1/hook",  # multicast
        "http://198.18.0.1/hook",  # benchmarking
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[::ffff:7f00:1]/hook",  # the same, as pydantic normalises it
        "http://[::7f00:1]/hook",  # IPv4-compatible 127.0.0.1: is_global, and never routed
        "http://[fc00::1]/hook",  # ULA
        "http://[fd12:3456::1]/hook",
        "http://[fe80::1]/hook",  # link-local
        "http://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 of 169.254.169.254
        "http://[2002:a00:1::]/hook",  # 6to4 of 10.0.0.1
    ],
)
def test_private_and_special_addresses_are_refused(url: str) -> None:
    with pytest.raises(InvalidInput, match="not a public address"):
        EgressPolicy().check(url)


@pytest.mark.parametrize(
    "url", ["http://127.1/", "http://2130706433/", "http://0x7f000001/", "http://0177.0.0.1/"]
)
def test_ambiguous_numeric_hosts_are_refused(url: str) -> None:
    with pytest.raises(InvalidInput, match="not a canonical IP address"):
        EgressPolicy(resolver=lambda host, port: ["93.184.216.34"]).check(url)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/x", "http or https"),
        ("file:///etc/passwd", "http or https"),
        ("gopher://example.com/", "http or https"),
        ("https://user:secret@example.com/hook", "credentials"),
        ("https://token@example.com/hook", "credentials"),
        ("https:///path-only", "no host"),
        ("https://example.com:99999/", "not a valid URL"),
        ("https://example.com:0/", "port 0"),
        ("https://exa mple.com/", "whitespace"),
        ("https://example.com/\r\nX-Injected: 1", "whitespace"),
        ("https://example.com/" + "a" * MAX_URL_LENGTH, "longer than"),
    ],
)
def test_malformed_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        resolving_to("93.184.216.34").check(url)


def test_a_name_is_refused_when_any_address_is_private() -> None:
    with pytest.raises(InvalidInput, match="10.1.2.3"):
        resolving_to("93.184.216.34", "10.1.2.3").check("https://hooks.example.com/x")
    with pytest.raises(InvalidInput, match="169.254.169.254"):
        resolving_to("169.254.169.254").check("https://metadata.example.com/")


def test_a_public_name_passes_with_the_addresses_checked() -> None:
    target = resolving_to("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946").check(
        "https://Hooks.Example.com/notify?sig=abc"
    )
    assert target.host == "hooks.example.com" and target.port == 443
    assert target.addresses == ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946")
    assert target.url_for("93.184.216.34") == "https://93.184.216.34:443/notify?sig=abc"
    assert target.url_for(target.addresses[1]).startswith(
        "https://[2606:2800:220:1:248:1893:25c8:1946]:443/"
    )
    assert target.host_header == "hooks.example.com"
    assert target.origin == "https://hooks.example.com:443"  # what is logged: no path, no query


def test_an_unresolvable_name_is_refused() -> None:
    with pytest.raises(InvalidInput, match="does not resolve"):
        resolving_to().check("https://nowhere.example/")


def test_allow_private_admits_local_targets_but_keeps_the_url_rules() -> None:
    policy = EgressPolicy(allow_private=True, resolver=lambda host, port: ["127.0.0.1"])
    assert policy.check("http://127.0.0.1:9000/hook").addresses == ("127.0.0.1",)
    assert policy.check("http://receiver.internal/hook").addresses == ("127.0.0.1",)
    with pytest.raises(InvalidInput, match="credentials"):
        policy.check("http://u:p@127.0.0.1/hook")
    with pytest.raises(InvalidInput, match="canonical"):
        policy.check("http://127.1/hook")
