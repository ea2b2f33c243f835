"""The client address limits are keyed on: X-Forwarded-For believed only from trusted proxies,
the edge's viewer address only with the edge's secret."""

from __future__ import annotations

import pytest

from textnlp.auth.client_address import (
    client_address,
    limit_key,
    trusted_networks,
    viewer_address,
)
from textnlp.config import load_settings
from textnlp.errors import ConfigError

VPC = trusted_networks(("10.0.0.0/16",))


def test_without_trusted_proxies_the_header_is_ignored() -> None:
    assert client_address("203.0.113.7", ["1.2.3.4"], ()) == "203.0.113.7"
    # The loopback peer is not trusted either (uvicorn's own default trusts it).
    assert client_address("127.0.0.1", ["1.2.3.4"], ()) == "127.0.0.1"


def test_an_untrusted_peer_is_the_client_whatever_it_claims() -> None:
    assert client_address("203.0.113.7", ["10.0.0.9"], VPC) == "203.0.113.7"


def test_the_right_most_untrusted_hop_is_the_client() -> None:
    # The client claimed 1.2.3.4; the ALB (10.0.1.5) appended the address it saw.
    assert client_address("10.0.1.5", ["1.2.3.4, 198.51.100.2"], VPC) == "198.51.100.2"
    # Proxies of our own in a chain are walked through; several header lines are one list.
    chain = ["9.9.9.9, 198.51.100.2", "10.0.2.8"]
    assert client_address("10.0.1.5", chain, VPC) == "198.51.100.2"


def test_every_hop_trusted_means_the_left_most_is_the_client() -> None:
    assert client_address("10.0.1.5", ["10.0.3.3, 10.0.2.2"], VPC) == "10.0.3.3"
    assert client_address("10.0.1.5", [], VPC) == "10.0.1.5"


def test_garbage_and_ports_in_the_header() -> None:
    assert client_address("10.0.1.5", ["evil, not-an-ip"], VPC) == "10.0.1.5"
    assert client_address("10.0.1.5", ["198.51.100.2:4711"], VPC) == "198.51.100.2"
    assert client_address("10.0.1.5", ["[2001:db8::1]:4711"], VPC) == "2001:db8::1"
    assert client_address(None, ["1.2.3.4"], VPC) == "unknown"
    assert client_address("testclient", ["1.2.3.4"], VPC) == "testclient"


def test_addresses_are_canonical_so_one_client_has_one_key() -> None:
    assert client_address("::ffff:203.0.113.7", [], ()) == "203.0.113.7"
    assert client_address("2001:DB8:0:0::1", [], ()) == "2001:db8::1"


def test_an_ipv6_client_is_limited_by_its_64() -> None:
    assert limit_key("2001:db8:1:2:aaaa::1") == limit_key("2001:db8:1:2:bbbb::2")
    assert limit_key("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert limit_key("2001:db8:1:3::1") != limit_key("2001:db8:1:2::1")
    assert limit_key("203.0.113.7") == "203.0.113.7"


def test_trusted_proxies_setting_takes_cidrs_only() -> None:
    api = load_settings(environ={}, api={"trusted_proxies": ["10.0.0.0/16", "192.0.2.1"]}).api
    assert api.trusted_proxies == ["10.0.0.0/16", "192.0.2.1/32"]
    with pytest.raises(ConfigError, match="trusted_proxies"):
        load_settings(environ={}, api={"trusted_proxies": ["the-alb"]})
    env = {"TEXTNLP_API__TRUSTED_PROXIES": '["10.0.0.0/16"]'}
    assert load_settings(environ=env).api.trusted_proxies == ["10.0.0.0/16"]


EDGE = "the-edge-secret"


def test_the_edges_viewer_address_is_believed_with_its_secret_only() -> None:
    assert viewer_address([EDGE], ["203.0.113.7"], EDGE) == "203.0.113.7"
    assert viewer_address([EDGE], [" 2001:DB8::1 "], EDGE) == "2001:db8::1"
    # Around the edge anyone can send the address header: without the secret it is nothing.
    assert viewer_address([], ["203.0.113.7"], EDGE) is None
    assert viewer_address(["a-guess"], ["203.0.113.7"], EDGE) is None
    assert viewer_address([EDGE[:-1]], ["203.0.113.7"], EDGE) is None
    # A second value beside the edge's (a client's own header the edge did not replace).
    assert viewer_address([EDGE, "x"], ["203.0.113.7"], EDGE) is None
    assert viewer_address([EDGE], ["203.0.113.7", "192.0.2.1"], EDGE) is None
    assert viewer_address([EDGE], ["203.0.113.7, 192.0.2.1"], EDGE) is None
    assert viewer_address([EDGE], ["not-an-ip"], EDGE) is None
    assert viewer_address([EDGE], [], EDGE) is None
    # No secret configured: the header is never read, whatever a request says.
    assert viewer_address([""], ["203.0.113.7"], "") is None


def test_viewer_verify_is_a_secret_setting() -> None:
    env = {"TEXTNLP_API__VIEWER_VERIFY": EDGE}
    api = load_settings(environ=env).api
    assert api.viewer_verify.get_secret_value() == EDGE
    assert EDGE not in repr(api)
    assert load_settings(environ={}).api.viewer_verify.get_secret_value() == ""
