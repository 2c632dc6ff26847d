"""Which server of a fleet takes a request: consistent hashing on the question, with bounded load.

Every request of one question (the pre-filter, each OmegaPRM probe, each chunk of an estimate) shares
the question's chat and differs only in the assistant prefix, so sending them all to one server lets
its prefix cache serve the shared part; a round-robin balancer finds the question's blocks on only
1 in N servers. The stages give each request its question's key (`question_key`, carried as
`Prompt.route`), so the judge's critiques of a question's traces follow it too.

The key is hashed onto a ring of virtual nodes (servers joining or leaving move only their own share
of questions) and the request goes to the question's own server, the first on the ring from the
key's point, while that server is within its bound: a free slot, or a queue no longer than `balance`
times the fleet's mean load (bounded-load consistent hashing, Mirrokni, Thorup and Zadimoghaddam
2018). Past the bound it goes to the next server on the ring within its bound, a stable second
choice, else to the least-loaded one. Waiting a little at home beats taking a free slot elsewhere:
on the simulated 16-server fleet of bench/fleet.py, spilling to any free slot sent a question's
requests to 3.8 servers on average (hit rate 0.71), waiting within the bound to 1.5 (0.89), with
occupancy 0.83 against 0.86. No server becomes a hot spot however the questions hash: the bound
follows the mean.

Pure logic over (load, slots) numbers: the HTTP fleet (`rsynth.engines.fleet`) and the simulated
fleet of `bench/fleet.py` route with the same code.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
from collections.abc import Iterator, Mapping

from rsynth.engines.base import Prompt

POLICIES = ("hash", "round-robin")
MIN_CAP = 4  # a question's own server takes at least this many requests in flight before it spills


def route_key(prompt: Prompt) -> str:
    """The routing key of a request: `Prompt.route` when the stage set one (`question_key`), else the
    chat before the assistant's turn, which is the prefix every request of that chat shares."""
    if prompt.route:
        return prompt.route
    return _digest(json.dumps([list(m) for m in prompt.messages], ensure_ascii=False))


def question_key(problem: str) -> str:
    """The routing key of every request about one question, whichever stage sends it: annotate-prm's
    pre-filter and probes, and the judge's critiques of that question's traces (their chats differ,
    the question does not). Whitespace-insensitive, so a re-formatted copy of the question still
    goes to the server holding it."""
    return _digest(" ".join(problem.split()))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _point(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


class Ring:
    """Servers on a hash ring, `replicas` virtual nodes each (an even share of keys per server)."""

    def __init__(self, names: list[str], replicas: int = 100) -> None:
        self.names = tuple(sorted(names))
        nodes = sorted((_point(f"{name}#{i}"), name) for name in self.names for i in range(replicas))
        self._points = [p for p, _ in nodes]
        self._owners = [n for _, n in nodes]

    def walk(self, key: str) -> Iterator[str]:
        """Every server once, in ring order from the key's point (its preferred server first)."""
        if not self._owners:
            return
        start = bisect.bisect(self._points, _point(key))
        seen: set[str] = set()
        for i in range(len(self._owners)):
            name = self._owners[(start + i) % len(self._owners)]
            if name not in seen:
                seen.add(name)
                yield name
                if len(seen) == len(self.names):
                    return


class Router:
    """Chooses a server for each request from the servers' current loads.

    `policy` "hash": consistent hashing with bounded load (module docstring); "round-robin": the next
    server in turn with a free slot (what a plain load balancer does; bench/fleet.py compares them).
    """

    def __init__(self, policy: str = "hash", *, balance: float = 1.25, replicas: int = 100) -> None:
        if policy not in POLICIES:
            raise ValueError(f"routing policy {policy!r}: expected one of {', '.join(POLICIES)}")
        if balance < 1.0:
            raise ValueError("balance must be >= 1")
        self.policy, self.balance, self.replicas = policy, balance, replicas
        self._ring = Ring([], replicas)
        self._turn = 0
        self.spilled = 0  # requests sent away from their question's server because it was full

    def choose(self, key: str, loads: Mapping[str, tuple[int, int]]) -> str | None:
        """The server for `key` among `loads` (name -> (requests in flight, slots)); None when empty."""
        if not loads:
            return None
        if self.policy == "round-robin":
            free = {name for name, (load, slots) in loads.items() if load < slots}
            names = sorted(loads)
            for i in range(len(names)):
                name = names[(self._turn + i) % len(names)]
                if name in free or not free:
                    self._turn = (self._turn + i + 1) % len(names)
                    return name
        if self._ring.names != tuple(sorted(loads)):
            self._ring = Ring(list(loads), self.replicas)
        walk = list(self._ring.walk(key))
        preferred = walk[0]
        total = sum(load for load, _ in loads.values())
        cap = max(MIN_CAP, math.ceil(self.balance * (total + 1) / len(loads)))
        name = next((n for n in walk if loads[n][0] < max(cap, loads[n][1])), None) or min(
            loads, key=lambda n: (loads[n][0] / max(loads[n][1], 1), n)
        )
        self.spilled += name != preferred
        return name
