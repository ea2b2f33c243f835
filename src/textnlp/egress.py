"""The egress policy: where the platform may send a request on a user's behalf (webhooks).

A user-given URL is checked twice: when it is accepted (``JobService.submit``: 422 when refused)
and again when it is used (``worker.notify``), because what a name resolves to can change
between the two (DNS rebinding). A URL passes when:

- its scheme is http or https, it has a host, no credentials (``user:pass@``), no whitespace or
  control characters, and at most ``MAX_URL_LENGTH`` characters;
- its host is a name or a canonical IP address: the numeric forms that parsers disagree about
  (``127.1``, ``2130706433``, ``0x7f000001``, ``0177.0.0.1``) are refused whatever they mean;
- *every* address the host resolves to is globally routable: not loopback, private (RFC 1918,
  ULA ``fc00::/7``), CGNAT (``100.64.0.0/10``), link-local (``169.254.0.0/16``, the cloud
  metadata service; ``fe80::/10``), multicast, documentation, benchmarking or reserved, and no
  IPv6 address that embeds such an IPv4 one (``::ffff:127.0.0.1``, ``::7f00:1``, 6to4, Teredo,
  NAT64).

``EgressTarget.addresses`` are the addresses that were checked: the caller connects to one of
them (with the original host name as ``Host`` and TLS server name), never resolves the name a
second time, and never follows redirects. ``allow_private`` (``queue.webhook_allow_private``)
skips the address check for tests and self-hosted setups; the URL rules still apply.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from textnlp.errors import InvalidInput

#: Longest URL accepted (browsers and proxies commonly stop near 2,000 characters).
MAX_URL_LENGTH = 2048
DEFAULT_PORTS = {"http": 80, "https": 443}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: (host, port) -> the IP addresses it resolves to, as strings.
Resolver = Callable[[str, int], list[str]]

#: Ranges refused even where ``is_global`` says otherwise (it has changed between Python
#: versions; multicast, for one, counts as global there).
_SPECIAL_NETWORKS = tuple(
    ipaddress.ip_network(cidr)
    for cidr in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/128",
        "::1/128",
        "::/96",  # IPv4-compatible (::7f00:1 is 127.0.0.1), deprecated and never routed
        "::ffff:0:0/96",
        "64:ff9b:1::/48",
        "100::/64",
        "2001::/23",
        "2001:db8::/32",
        "2002::/16",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
#: A host whose last label is a number is an IP address in some parser's eyes, never a name.
_NUMERIC_LAST_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$", re.IGNORECASE)
_UNSAFE_CHARACTERS = re.compile(r"[\x00-\x20\x7f]")


@dataclass(frozen=True)
class EgressTarget:
    """A checked URL: connect to one of ``addresses``, name ``host`` in Host and TLS."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]

    @property
    def origin(self) -> str:
        """``scheme://host:port``: what may be logged (paths and queries may hold secrets)."""
        return f"{self.scheme}://{_bracketed(self.host)}:{self.port}"

    def url_for(self, address: str) -> str:
        """The URL with its host replaced by ``address`` (the one connected to)."""
        parts = urlsplit(self.url)
        netloc = f"{_bracketed(address)}:{self.port}"
        return parts._replace(netloc=netloc).geturl()

    @property
    def host_header(self) -> str:
        default = DEFAULT_PORTS[self.scheme] == self.port
        return _bracketed(self.host) if default else f"{_bracketed(self.host)}:{self.port}"


def resolve(host: str, port: int) -> list[str]:
    """The addresses of ``host`` (system resolver), in the resolver's order, without repeats."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise InvalidInput(f"webhook host {host!r} does not resolve ({exc})") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class EgressPolicy:
    def __init__(self, *, allow_private: bool = False, resolver: Resolver | None = None) -> None:
        self.allow_private = allow_private
        self.resolver = resolver or resolve

    def check(self, url: str) -> EgressTarget:
        """The target of ``url`` with its checked addresses; ``InvalidInput`` when refused."""
        parts = _parse(url)
        scheme, host = parts.scheme.lower(), (parts.hostname or "").rstrip(".")
        port = DEFAULT_PORTS[scheme] if parts.port is None else parts.port
        literal = _ip_literal(host)
        addresses = [str(literal)] if literal is not None else self.resolver(host, port)
        if not addresses:
            raise InvalidInput(f"webhook host {host!r} does not resolve")
        if not self.allow_private:
            for address in addresses:
                if not is_public(ipaddress.ip_address(address.split("%", 1)[0])):
                    raise InvalidInput(
                        f"webhook host {host!r} resolves to {address}, which is not a public "
                        "address (private, loopback, link-local and reserved targets are "
                        "refused; a local setup allows them with "
                        "TEXTNLP_QUEUE__WEBHOOK_ALLOW_PRIVATE=true)"
                    )
        return EgressTarget(
            url=url, scheme=scheme, host=host, port=port, addresses=tuple(addresses)
        )


def is_public(address: IPAddress) -> bool:
    """Whether ``address`` is globally routable and no special-purpose address."""
    if not address.is_global or address.is_multicast or address.is_reserved:
        return False
    if any(
        address in network for network in _SPECIAL_NETWORKS if network.version == address.version
    ):
        return False
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None and not is_public(embedded):
            return False
    return True


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _parse(url: str) -> SplitResult:
    if len(url) > MAX_URL_LENGTH:
        raise InvalidInput(f"webhook URL is longer than {MAX_URL_LENGTH} characters")
    if _UNSAFE_CHARACTERS.search(url):
        raise InvalidInput("webhook URL contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError on a port that is no number or out of range
    except ValueError as exc:
        raise InvalidInput(f"webhook URL is not a valid URL ({exc})") from None
    if port == 0:
        raise InvalidInput("webhook URL is not a valid URL (port 0)")
    if parts.scheme.lower() not in DEFAULT_PORTS:
        raise InvalidInput("webhook URL must be http or https")
    if "@" in parts.netloc:
        raise InvalidInput("webhook URL must not carry credentials (user:password@)")
    if not parts.hostname:
        raise InvalidInput("webhook URL has no host")
    return parts


def _ip_literal(host: str) -> IPAddress | None:
    """The address a host names literally; ``InvalidInput`` for ambiguous numeric forms."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if ":" in host or _NUMERIC_LAST_LABEL.match(host.rsplit(".", 1)[-1]):
        raise InvalidInput(
            f"webhook host {host!r} is not a canonical IP address (write a dotted quad, "
            "a bracketed IPv6 address or a name)"
        )
    return None


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host
