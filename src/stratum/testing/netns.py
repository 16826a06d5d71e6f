"""Hosts on one machine, each behind its own network: a Linux network namespace per agent
(`ip netns`), joined to the machine by a veth pair, with `tc netem` to delay, lose or cut
its traffic. Needs root and iproute2; `unavailable()` says why not, for a clear skip.

    host side  st<id>h  10.213.N.1/30  <-- veth -->  10.213.N.2/30  st<id>n  inside netns

The server listens on 0.0.0.0 and each agent reaches it at 10.213.N.1: every packet between
them crosses the veth pair, where netem acts on both directions. A kernel without netem
(sch_netem) still gets a cut: the host side of the pair goes down (`netem_available()`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

SUBNET = "10.213"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


def unavailable() -> str | None:
    """Why network namespaces cannot be used here, or None when they can."""
    if os.name != "posix" or os.geteuid() != 0:
        return "network namespaces need root (run the suite as root, as CI does)"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"`{tool}` (iproute2) is not installed"
    probe = f"stprobe{os.getpid() % 100000}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"`ip netns add` fails here: {made.stderr.strip()}"
    _ip("netns", "delete", probe, check=False)
    return None


_NETEM: list[bool] = []


def netem_available() -> bool:
    """Whether this kernel has the netem qdisc (sch_netem); some container kernels lack it."""
    if not _NETEM:
        probe = subprocess.run(
            ["tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "0ms"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if probe.returncode == 0:
            subprocess.run(["tc", "qdisc", "del", "dev", "lo", "root"], check=False, timeout=30)
        _NETEM.append(probe.returncode == 0)
    return _NETEM[0]


@dataclass(slots=True)
class Namespace:
    """One host's network. `index` picks its /30 (1..250); names stay under 15 characters."""

    index: int
    tag: str = ""

    def __post_init__(self) -> None:
        self.tag = self.tag or f"{os.getpid() % 10000}"

    @property
    def name(self) -> str:
        return f"st{self.tag}-{self.index}"

    @property
    def host_if(self) -> str:
        return f"st{self.tag}h{self.index}"

    @property
    def inner_if(self) -> str:
        return f"st{self.tag}n{self.index}"

    @property
    def host_ip(self) -> str:
        """The machine's address as this namespace sees it: where the server is."""
        return f"{SUBNET}.{self.index}.1"

    @property
    def inner_ip(self) -> str:
        return f"{SUBNET}.{self.index}.2"

    def create(self) -> Namespace:
        self.destroy()  # a leftover of a killed run
        _ip("netns", "add", self.name)
        _ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.inner_if)
        _ip("link", "set", self.inner_if, "netns", self.name)
        _ip("addr", "add", f"{self.host_ip}/30", "dev", self.host_if)
        _ip("link", "set", self.host_if, "up")
        inside = ("netns", "exec", self.name, "ip")
        _ip(*inside, "addr", "add", f"{self.inner_ip}/30", "dev", self.inner_if)
        _ip(*inside, "link", "set", self.inner_if, "up")
        _ip(*inside, "link", "set", "lo", "up")
        return self

    def destroy(self) -> None:
        _ip("link", "delete", self.host_if, check=False)  # takes its peer with it
        _ip("netns", "delete", self.name, check=False)

    def command(self, *argv: str) -> list[str]:
        """`argv` run inside this namespace (environment and working directory kept)."""
        return ["ip", "netns", "exec", self.name, *argv]

    # -- the link ----------------------------------------------------------------------
    def netem(self, *spec: str) -> None:
        """Apply one netem setting to both directions (e.g. "delay", "50ms"; "loss",
        "100%"); no spec: a clean link again."""
        sides = ((["tc"], self.host_if), ([*self.command("tc")], self.inner_if))
        for base, dev in sides:
            if spec:
                args = [*base, "qdisc", "replace", "dev", dev, "root", "netem", *spec]
            else:
                args = [*base, "qdisc", "del", "dev", dev, "root"]
            result = subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)
            if result.returncode != 0 and spec:
                raise RuntimeError(f"{' '.join(args)}: {result.stderr.strip()}")

    def cut(self) -> None:
        """Every packet lost, both ways: connections hang, as behind a failed link. With
        netem (loss 100%) where the kernel has it, else by taking the host side of the veth
        pair down (the peer loses its carrier and drops what it sends, silently too)."""
        if netem_available():
            self.netem("loss", "100%")
        else:
            _ip("link", "set", self.host_if, "down")

    def heal(self) -> None:
        if netem_available():
            self.netem()
        else:
            _ip("link", "set", self.host_if, "up")

    def delay(self, ms: int, loss_pct: float = 0.0) -> None:
        spec = ["delay", f"{ms}ms"]
        if loss_pct:
            spec += ["loss", f"{loss_pct}%"]
        self.netem(*spec)
