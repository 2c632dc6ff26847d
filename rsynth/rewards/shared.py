"""One scorer (and its worker processes) per distinct set of options, shared by every call.

Trainers call a reward function thousands of times; building verifiers per call would start worker
processes per call. `batcher_for(options)` returns the process-wide `Batcher` for those options,
built on first use and closed when the interpreter exits.
"""

from __future__ import annotations

import atexit
import threading
from typing import Any

from rsynth.rewards.params import RewardParams
from rsynth.rewards.scorer import Batcher, RewardScorer

_LOCK = threading.Lock()
_BATCHERS: dict[RewardParams, Batcher] = {}


def batcher_for(options: dict[str, Any] | None = None) -> Batcher:
    params = RewardParams.from_kwargs(options or {})
    with _LOCK:
        if params not in _BATCHERS:
            _BATCHERS[params] = Batcher(RewardScorer(params))
        return _BATCHERS[params]


def close_all() -> None:
    """Stop every shared scorer's workers (also run at exit)."""
    with _LOCK:
        for b in _BATCHERS.values():
            b.close()
            b.scorer.close()
        _BATCHERS.clear()


atexit.register(close_all)
