"""The code verifier and its sandbox: untrusted programs run against tests, never in rsynth's process.

`verifier.py` (`CodeVerifier`: pass | fail | timeout | error per program) runs each program through
`sandbox.py` (bubblewrap, `unshare` + `nsinit.py`, or rlimits by name), one sacrificial
`supervisor.py` per run. Inside the sandbox the trusted `harness.py` holds the tests and calls the
program, which runs in `child.py`, over `wire.py` (plain data only); `mbpp_types.py` restores MBPP+
input types. The scripts run in the sandbox's interpreter, so they import nothing from rsynth.
"""

from __future__ import annotations

from rsynth.verifiers.code.verifier import CodeVerifier, evalplus_tests

__all__ = ["CodeVerifier", "evalplus_tests"]
