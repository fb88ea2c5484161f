"""Keep the garbage collector's full passes off the audio path.

A full (generation 2) collection walks every container object the process holds. After
start-up that is ~50,000 objects (grpc, protobuf, numpy, the backend's modules and models),
and one pass blocks the event loop for 25-100 ms on this project's benchmark machine: every
live stream's frames wait behind it, which is the p99 latency a caller hears. Those objects
live as long as the process, so they are moved to the permanent generation once the server
has been built (``gc.freeze``): later full passes walk only what streams allocated (~1,500
objects, under 1 ms in the same measurement). Nothing is collected first: that full pass,
run on the event loop at start-up, held it 125-155 ms on a loaded machine (asyncio's debug
mode reports it: tests/server/test_event_loop.py), to free the 35-40 objects of cyclic garbage
start-up leaves (measured with the collector's callbacks), which are pinned instead. The
collector never looks at frozen objects again, so one that is frozen and later dies in a
reference cycle stays until the process exits (only reference counting frees frozen
objects). That bounds what may be frozen: the process's
long-lived state, and whatever streams happen to be live at the second freeze (after the
backend's warm-up), whose ends are freed by reference counting
(tests/server/test_lifecycle.py). A process that builds many servers (the test suite) keeps
the cycles of each one's start-up objects.
"""

from __future__ import annotations

import gc

__all__ = ["settle"]


def settle() -> int:
    """Freeze everything alive now (no collection: see the module's docstring); returns how
    many objects are frozen."""
    gc.freeze()
    return gc.get_freeze_count()
