"""Outbound HTTP the model can steer never reaches inside: address classification and a guarded session.

`classify(address)` names the class of an address the agent's fetches must not reach (loopback,
private, link-local, CGNAT, multicast, cloud metadata, unspecified, reserved, ...) or returns
None for a public one. IPv4-mapped (`::ffff:127.0.0.1`), 6to4, NAT64 and Teredo addresses are
judged by the IPv4 address inside them; legacy spellings of IPv4 (`0x7f000001`, `2130706433`,
`0177.0.0.1`, `127.1`) are read the way the C resolver reads them.

`guarded_session(policy)` is an aiohttp session whose connector
- resolves every host itself and refuses it when ANY of its addresses is refused (a name that
  resolves to one public and one private address is refused: no round-robin tricks);
- connects only to the addresses it checked (the resolver's answer is what aiohttp dials; no
  second lookup, so DNS rebinding between check and connect does not help), and checks the
  address again in the socket factory, the last moment before `connect()` (this also covers IP
  literals, which aiohttp never hands to a resolver);
- never uses environment proxies.
Redirects are followed by `fetch_guarded`, which checks every hop's URL before it goes there.

`[tools.web_fetch] allow_private = true` opens private, loopback, link-local and CGNAT addresses
(intranet use) but never metadata, multicast or unspecified ones; `allow_hosts` opens exactly the
names, `*.suffix` globs, addresses or networks (`10.0.0.0/8`) it lists, metadata included.
"""

from __future__ import annotations

import asyncio
import fnmatch
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Cloud metadata services: AWS/GCP/Azure/OpenStack/DigitalOcean, AWS IPv6, Alibaba, Oracle.
METADATA = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "192.0.0.192"))
CGNAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
# What allow_private opens; every other class stays refused unless allow_hosts names it.
PRIVATE_CLASSES = frozenset({"loopback", "private", "link-local", "CGNAT (shared address space)", "unique local"})


class AddressRefused(OSError):
    """A destination the policy refuses; the message names the address, its class and the way to open it."""


def parse_host_address(host: str) -> IPAddress | None:
    """The address a URL host stands for when it is numeric (any spelling the C resolver accepts), else None."""
    bare = host.strip("[]").split("%", 1)[0].rstrip(".")
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    if not bare or not all(c in "0123456789abcdefxABCDEFX." for c in bare) or not bare[0].isdigit():
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(bare))   # 0x7f000001, 2130706433, 0177.0.0.1, 127.1
    except OSError:
        return None


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def classify(address: IPAddress) -> str | None:
    """The class that makes `address` internal ("loopback", "metadata", ...), or None when it is public."""
    inner = _embedded_ipv4(address)
    if inner is not None:
        return classify(inner)
    if address in METADATA:
        return "cloud metadata"
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_multicast:
        return "multicast"
    if address.is_link_local:
        return "link-local"
    if isinstance(address, ipaddress.IPv4Address) and address in CGNAT:
        return "CGNAT (shared address space)"
    if isinstance(address, ipaddress.IPv6Address) and address in ipaddress.ip_network("fc00::/7"):
        return "unique local"
    if address.is_private:
        return "private"
    if address.is_reserved:
        return "reserved"
    if not address.is_global:
        return "special-purpose (not globally routable)"
    return None


@dataclass(frozen=True)
class NetPolicy:
    """What the agent's fetches may reach: public addresses, plus what the admin opened."""

    allow_private: bool = False
    allow_hosts: tuple[str, ...] = ()
    _networks: tuple[Network, ...] = field(default=(), init=False, repr=False)

    def __post_init__(self) -> None:
        networks = []
        for entry in self.allow_hosts:
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                address = parse_host_address(entry)
                if address is not None:
                    networks.append(ipaddress.ip_network(address))
        object.__setattr__(self, "_networks", tuple(networks))

    def host_allowed(self, host: str) -> bool:
        """Whether `host` (a URL's host name) is listed in allow_hosts by name or glob."""
        name = host.lower().rstrip(".")
        return any(fnmatch.fnmatchcase(name, pattern.lower().rstrip(".")) for pattern in self.allow_hosts
                   if not pattern.replace(".", "").replace(":", "").replace("/", "").isdigit())

    def refusal(self, address: IPAddress, *, host: str = "") -> str | None:
        """Why `address` (reached as `host`) is refused, or None when it may be reached."""
        kind = classify(address)
        if kind is None or any(address in network for network in self._networks):
            return None
        if self.allow_private and kind in PRIVATE_CLASSES:
            return None
        inner = _embedded_ipv4(address)
        shown = f"{address} ({inner})" if inner is not None else str(address)
        spelled = f"{host} is {shown}" if host and host.strip("[]").lower() != str(address) else shown
        opening = ("list it in [tools.web_fetch] allow_hosts" if kind not in PRIVATE_CLASSES
                   else "set [tools.web_fetch] allow_private = true or list it in allow_hosts")
        return (f"{spelled}, a {kind} address: the agent's fetches may not reach internal addresses "
                f"(an admin can {opening})")

    def check(self, address: IPAddress, *, host: str = "") -> None:
        reason = self.refusal(address, host=host)
        if reason is not None:
            raise AddressRefused(reason)


class GuardedResolver(AbstractResolver):
    """Resolves a host and refuses it when any of its addresses is refused by the policy."""

    def __init__(self, policy: NetPolicy, opened: set[IPAddress]) -> None:
        self.policy = policy
        self.opened = opened   # addresses of hosts allow_hosts names: the socket factory lets them through

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        numeric = parse_host_address(host)
        if numeric is not None:
            infos: Iterable[tuple[Any, ...]] = [(socket.AF_INET6 if numeric.version == 6 else socket.AF_INET,
                                                 socket.SOCK_STREAM, 6, "", (str(numeric), port))]
        else:
            loop = asyncio.get_running_loop()
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, family=family)
        named = self.policy.host_allowed(host)
        results: list[ResolveResult] = []
        for fam, _, proto, _, sockaddr in infos:
            address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
            if named:
                self.opened.add(address)
            else:
                self.policy.check(address, host=host)
            results.append({"hostname": host, "host": str(sockaddr[0]), "port": int(sockaddr[1]),
                            "family": fam, "proto": proto, "flags": socket.AI_NUMERICHOST | socket.AI_NUMERICSERV})
        if not results:
            raise OSError(f"{host}: the name resolves to no address")
        return results

    async def close(self) -> None:
        return None


def guarded_connector(policy: NetPolicy) -> aiohttp.TCPConnector:
    """A connector that resolves through the policy and checks each address again right before connecting."""
    opened: set[IPAddress] = set()

    def socket_factory(addr_info: tuple[Any, ...]) -> socket.socket:
        family, kind, proto, _, sockaddr = addr_info
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in opened:
            policy.check(address)
        return socket.socket(family=family, type=kind, proto=proto)

    return aiohttp.TCPConnector(resolver=GuardedResolver(policy, opened), socket_factory=socket_factory,
                                use_dns_cache=False, force_close=True)


def refusal_in(exc: BaseException) -> AddressRefused | None:
    """The AddressRefused an aiohttp error wraps, if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, AddressRefused):
            return current
        inner = getattr(current, "os_error", None)
        if isinstance(inner, AddressRefused):
            return inner
        current = current.__cause__ or current.__context__
    return None


def check_url(url: str, policy: NetPolicy) -> None:
    """Refuse a URL before any traffic: wrong scheme, or a numeric host the policy refuses."""
    from yarl import URL

    parsed = URL(url)
    if parsed.scheme not in ("http", "https"):
        raise AddressRefused(f"{url!r}: only http:// and https:// addresses can be fetched")
    host = parsed.raw_host or ""
    if not host:
        raise AddressRefused(f"{url!r}: the address has no host")
    address = parse_host_address(host)
    if address is not None and not policy.host_allowed(host):
        policy.check(address, host=host)


REDIRECTS = (301, 302, 303, 307, 308)


def guarded_session(policy: NetPolicy, timeout: aiohttp.ClientTimeout) -> aiohttp.ClientSession:
    """An aiohttp session that can only reach what `policy` allows (no environment proxies)."""
    return aiohttp.ClientSession(connector=guarded_connector(policy), timeout=timeout, trust_env=False)


async def get_guarded(http: aiohttp.ClientSession, url: str, policy: NetPolicy, *, headers: dict[str, str],
                      max_redirects: int = 5) -> aiohttp.ClientResponse:
    """GET `url` through a guarded session, checking every redirect hop before it is followed.

    The caller releases the response. A refused hop raises AddressRefused naming the hop it
    came from; other failures are aiohttp's own errors.
    """
    from yarl import URL

    current, previous = url, ""
    for _ in range(max_redirects + 1):
        try:
            check_url(current, policy)
            response = await http.get(current, headers=headers, allow_redirects=False)
        except (AddressRefused, aiohttp.ClientError) as exc:
            refused = exc if isinstance(exc, AddressRefused) else refusal_in(exc)
            if refused is None:
                raise
            where = f" (after a redirect from {previous} to {current})" if previous else ""
            raise AddressRefused(f"{refused}{where}") from None
        location = response.headers.get("Location")
        if response.status not in REDIRECTS or not location:
            return response
        response.release()
        previous, current = current, str(response.url.join(URL(location)))
    raise AddressRefused(f"{url}: more than {max_redirects} redirects; stopped at {current}")
