"""Network modes: a private namespace with only lo (up), Docker's none, and the host's network."""
from __future__ import annotations

import os

import pytest

from tests.integration.test_sandbox_support import (  # noqa: F401 - fixtures
    Containers,
    busybox_layer,
    containers,
)

pytestmark = pytest.mark.integration

IFF_UP = 0x1


def _interfaces(proc_net_dev: str) -> list[str]:
    return sorted(line.split(":")[0].strip() for line in proc_net_dev.splitlines()[2:])


@pytest.mark.parametrize("network", ["private", "none"])
def test_own_namespace_has_only_lo_and_it_is_up(containers: Containers, network: str) -> None:
    result = containers.sh("cat /proc/net/dev; cat /sys/class/net/lo/flags; readlink /proc/self/ns/net",
                           network=network)
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert _interfaces("\n".join(lines[:-2])) == ["lo"]
    assert int(lines[-2], 16) & IFF_UP
    assert lines[-1] != os.readlink("/proc/self/ns/net")


def test_host_network_sees_the_host_interfaces(containers: Containers) -> None:
    result = containers.sh("cat /proc/net/dev; readlink /proc/self/ns/net", network="host")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[-1] == os.readlink("/proc/self/ns/net")
    with open("/proc/net/dev") as f:
        assert _interfaces("\n".join(lines[:-1])) == _interfaces(f.read())
