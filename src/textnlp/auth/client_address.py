"""Who is at the other end: the client address that limits are keyed on.

``X-Forwarded-For`` is a list that every proxy appends to, so only the hops our own proxies
appended can be believed. ``client_address(peer, forwarded_for, trusted)`` walks it from the
right: while the hop that handed the request over is a trusted proxy, the hop before it is
believed; the first one that is not trusted is the client. A client's own ``X-Forwarded-For``
thus ends up left of that hop and changes nothing; without trusted proxies (the default) the
header is not read at all. uvicorn (``textnlp serve``) applies the same rule to the address it
logs and puts in the scope, so the two agree.

``viewer_address(verify, viewer, secret)`` is the other way an edge may say who the client is:
one header holding the viewer's address that the edge sets itself (CloudFront's viewer-request
function, in the deployment), believed only when the request also carries the edge's secret,
since the hops after the edge (API Gateway's public URL) let anyone send that header.

``limit_key(address)`` is what a per-address limit counts: an IPv6 client by its /64 (one
subscriber gets a whole /64, so its single addresses are free to make up).
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable, Sequence
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

UNKNOWN = "unknown"


@lru_cache(maxsize=64)
def trusted_networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def client_address(
    peer: str | None, forwarded_for: Iterable[str], trusted: Sequence[Network]
) -> str:
    """The client's address (canonical text), or ``peer`` as given when it is not an IP."""
    current = _parse(peer)
    if current is None:
        return peer or UNKNOWN
    if not trusted or not _is_trusted(current, trusted):
        return str(current)
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",")]
    for raw in reversed(hops):
        hop = _parse(_without_port(raw))
        if hop is None:  # garbage a trusted proxy passed on: stop at the proxy that did
            return str(current)
        current = hop
        if not _is_trusted(current, trusted):
            return str(current)
    return str(current)  # every hop is ours: the left-most one is the client


def viewer_address(verify: Sequence[str], viewer: Sequence[str], secret: str) -> str | None:
    """The address in ``viewer`` (canonical text) when ``verify`` is the edge's ``secret``; None
    when the request did not come through the edge (no secret, a wrong one, or several values:
    anyone can send these headers past the edge) or the edge's header is not one address."""
    if not secret or len(verify) != 1 or len(viewer) != 1:
        return None
    if not hmac.compare_digest(verify[0].encode(), secret.encode()):
        return None
    address = _parse(viewer[0].strip())
    return None if address is None else str(address)


def limit_key(address: str) -> str:
    parsed = _parse(address)
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return address


def _parse(text: str | None) -> Address | None:
    if not text:
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _without_port(hop: str) -> str:
    """``1.2.3.4:5678`` and ``[::1]:5678`` as proxies may write them, without the port."""
    if hop.startswith("["):
        return hop[1:].partition("]")[0]
    if hop.count(":") == 1:
        return hop.partition(":")[0]
    return hop


def _is_trusted(address: Address, trusted: Sequence[Network]) -> bool:
    return any(address.version == net.version and address in net for net in trusted)
