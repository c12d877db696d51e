"""Start-up work in bulk: the garbage collector paused while long-lived objects pile up.

Loading 100,000 homes and restoring their states creates millions of objects
that live as long as the service. Each of the collector's full passes walks
all of them again, so with it running the start-up grows faster than the
number of homes (a fifth of the CPU at 20,000 homes). Nothing made here is
garbage worth collecting, and the service collects and freezes everything
once start-up is done (`gateway/service.py`).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused(when: bool = True) -> Iterator[None]:
    """No collection inside (when `when`); the collector's state is as it was afterwards."""
    was_enabled = gc.isenabled()
    if when:
        gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
