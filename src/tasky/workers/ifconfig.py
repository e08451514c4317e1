"""The `ifconfig` example worker: lists the machine's network interfaces through psutil."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import psutil

from tasky.context import TaskContext
from tasky.worker import EmptyConfig, Worker


class IfconfigWorker(Worker):
    name = "ifconfig"
    description = """
        List the network interfaces of the machine that runs the task.

        For each interface, sorted by name: its MAC address (null when it has
        none), its IPv4 and IPv6 addresses with netmask and prefix length,
        whether it is up, and its MTU. It takes no config: send {}.
        """
    config = EmptyConfig
    max_tasks = 10
    restartable = True
    examples = [{}]

    def perform(self, config: EmptyConfig, ctx: TaskContext) -> dict[str, list[dict[str, Any]]]:
        addresses = psutil.net_if_addrs()
        stats = psutil.net_if_stats()
        names = sorted(set(addresses) | set(stats))
        return {"interfaces": [describe_interface(name, addresses.get(name, []), stats.get(name)) for name in names]}


def describe_interface(name: str, addresses: list[Any], stats: Any) -> dict[str, Any]:
    """Build one interface entry from psutil's `snicaddr` list and `snicstats` (None when psutil has no stats)."""
    mac = None
    ipv4: list[dict[str, Any]] = []
    ipv6: list[dict[str, Any]] = []
    for address in addresses:
        if address.family == psutil.AF_LINK:
            mac = address.address
        elif address.family == socket.AF_INET:
            ipv4.append(_describe_address(address))
        elif address.family == socket.AF_INET6:
            ipv6.append(_describe_address(address))
    return {
        "name": name,
        "mac": mac,
        "ipv4": ipv4,
        "ipv6": ipv6,
        "is_up": stats.isup if stats is not None else None,
        "mtu": stats.mtu if stats is not None else None,
    }


def prefix_length(netmask: str | None) -> int | None:
    """Return the prefix length of an IPv4 or IPv6 netmask, or None when it is missing or not contiguous."""
    if not netmask:
        return None
    try:
        mask = ipaddress.ip_address(netmask)
    except ValueError:
        return None
    width = mask.max_prefixlen
    bits = int(mask)
    ones = bin(bits).count("1")
    contiguous = ((1 << ones) - 1) << (width - ones)
    return ones if bits == contiguous else None


def _describe_address(address: Any) -> dict[str, Any]:
    # psutil keeps the zone of a link-local IPv6 address, as in 'fe80::1%eth0'.
    return {"address": address.address, "netmask": address.netmask, "prefix_length": prefix_length(address.netmask)}
