"""Worker processes that never re-run the caller's script.

A "spawn" child re-imports the parent's `__main__` before it unpickles its target: by module name
when the parent was started with `python -m`, else by the script's path
(`multiprocessing.spawn.get_preparation_data`). For a user who calls rsynth from a plain script or a
`__main__`-less module, that re-runs their top-level code in every verifier worker (which then dies
at start-up or recurses). rsynth's workers need only rsynth, so while one starts the parent's main
module is hidden: the child is prepared as if the parent were an interactive session.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_MISSING = object()


@contextmanager
def main_hidden() -> Iterator[None]:
    """While inside, a spawned (or forkserver) child does not import the parent's `__main__`."""
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    with _lock:
        spec, path = getattr(main, "__spec__", None), main.__dict__.get("__file__", _MISSING)
        main.__spec__ = None
        main.__dict__.pop("__file__", None)
        try:
            yield
        finally:
            main.__spec__ = spec
            if path is not _MISSING:
                main.__file__ = path
