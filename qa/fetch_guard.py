"""The network layer under one web fetch: where it may connect, and a deadline no read outlives.

httpx bounds each read, not a whole reply: a server that trickles its headers a byte at a time
is never cut off. And a link in a feed, or a redirect, may point at this machine's own services
or a cloud's metadata address. Both are settled here, where connections are opened.
"""

import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass

import httpcore
import httpx

SETTING = "QA_FETCH_ALLOW_PRIVATE"
# Cloud providers' instance metadata; link-local or unique-local too, named for a clearer reason.
METADATA_ADDRESSES = {
    ipaddress.ip_address("169.254.169.254"),
    ipaddress.ip_address("fd00:ec2::254"),
}
DEFAULT_PORTS = {"http": 80, "https": 443}


class RefusedAddress(Exception):
    """A link or redirect led to an address that is not public; the message says which."""


@dataclass(frozen=True)
class Origin:
    """A host and port, as httpx connects to them."""

    host: str
    port: int

    @classmethod
    def of(cls, url: str) -> "Origin":
        parsed = httpx.URL(url)
        return cls(
            parsed.raw_host.decode("ascii").lower(), parsed.port or DEFAULT_PORTS[parsed.scheme]
        )


def address_kind(address: str) -> str | None:
    """What makes `address` one a link may not reach ("loopback", "private", …), or None."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip in METADATA_ADDRESSES:
        return "cloud metadata"
    for kind, test in (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("private", ip.is_private),
        ("multicast", ip.is_multicast),
    ):
        if test:
            return kind
    return None if ip.is_global else "non-public"


class GuardedBackend(httpcore.SyncBackend):
    """Opens one fetch's connections: only to addresses it may reach, and none past its
    deadline. Every connect, read, write and TLS handshake waits at most until the deadline."""

    def __init__(self, deadline: float, trusted: Origin, allow_private: bool) -> None:
        self.deadline = deadline
        self.trusted = trusted
        self.allow_private = allow_private

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        addresses = resolved(host, port)
        if not self.allow_private and Origin(host.lower(), port) != self.trusted:
            refuse_non_public(host, port, addresses)
        failure: Exception | None = None
        # Connect to the addresses just checked, not to the name, which may resolve anew.
        for address in addresses:
            try:
                stream = super().connect_tcp(
                    address,
                    port,
                    timeout=self.within(timeout, httpcore.ConnectTimeout),
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as error:
                failure = error
                continue
            return DeadlineStream(stream, self)
        raise failure or httpcore.ConnectError(f"{host} has no address")

    def within(self, timeout: float | None, late: type[Exception]) -> float:
        """`timeout` cut to what is left before the deadline; `late` when nothing is."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise late("deadline passed")
        return left if timeout is None else min(timeout, left)


class DeadlineStream(httpcore.NetworkStream):
    """A connection whose every wait ends by its fetch's deadline."""

    def __init__(self, stream: httpcore.NetworkStream, backend: GuardedBackend) -> None:
        self.stream = stream
        self.backend = backend

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.stream.read(max_bytes, self.backend.within(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.stream.write(buffer, self.backend.within(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self.stream.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None):
        left = self.backend.within(timeout, httpcore.ConnectTimeout)
        return DeadlineStream(
            self.stream.start_tls(ssl_context, server_hostname, left), self.backend
        )

    def get_extra_info(self, info: str):
        return self.stream.get_extra_info(info)


class GuardedTransport(httpx.HTTPTransport):
    """httpx's own transport, over connections opened by `backend`."""

    def __init__(self, backend: GuardedBackend, ssl_context: ssl.SSLContext) -> None:
        super().__init__(verify=ssl_context)
        # httpx takes no network backend of its own; the httpcore pool under it does.
        self._pool = httpcore.ConnectionPool(ssl_context=ssl_context, network_backend=backend)


def resolved(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, in the resolver's order."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise httpcore.ConnectError(f"cannot resolve {host}: {error}") from None
    return list(dict.fromkeys(sockaddr[0] for *_, sockaddr in found))


def refuse_non_public(host: str, port: int, addresses: list[str]) -> None:
    """Raise RefusedAddress when any address of `host` is not public: checking only the first
    would let a name with one public and one private address through."""
    for address in addresses:
        kind = address_kind(address)
        if kind is None:
            continue
        named = f"{host}:{port}" if host == address else f"{host}:{port} ({address})"
        raise RefusedAddress(
            f"{named} is a {kind} address, not fetched from a feed link or a redirect "
            f"(set {SETTING}=true to allow)"
        )
