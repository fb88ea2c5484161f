"""Make a multiprocessing worker exit when the process that started it dies.

A `concurrent.futures.ProcessPoolExecutor` worker (the local engine's speech recognisers) does
not notice its parent's death: it waits for its next task on a queue whose write end it holds
itself (a "spawn" child receives the whole queue), so it never reads end-of-file. A server
killed with SIGKILL (the OOM killer, ``kill -9``, a container runtime's last resort) left its
recognisers running for ever, each with a loaded model and the server's stdout and stderr,
so whatever waited for those pipes to close waited for ever too.

`exit_with_parent` watches `multiprocessing.parent_process().sentinel`: a pipe whose other
end only the parent holds (multiprocessing keeps it open until it has joined the child), so
it reads end-of-file the moment the parent is gone, however it died. It is portable, needs
no signal handler, and is immune to what makes ``PR_SET_PDEATHSIG`` unfit here: that fires
when the parent *thread* that started the child ends, and a pool starts its workers from
whichever thread submits first (the engine's loader runs in a thread pool).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import threading

__all__ = ["exit_with_parent"]

# The exit status of a worker whose parent died; nobody is left to read it, but a nonzero
# one tells anyone tracing the process that it did not end by the pool's own shutdown.
_ORPHANED_EXIT_STATUS = 70


def exit_with_parent() -> None:
    """Start a daemon thread that ends this process (``os._exit``) when its multiprocessing
    parent dies. Call it in the worker, e.g. from the pool's ``initializer``.

    ``os._exit`` and not an exception: the main thread may be blocked in a queue read or a
    native call that holds the GIL (a pocketsphinx decode; then the exit waits for it to
    end), and a worker has no state worth flushing. Does nothing in a process that was not
    started by multiprocessing.
    """
    parent = multiprocessing.parent_process()
    if parent is None or parent.sentinel is None:
        return
    sentinel = parent.sentinel

    def watch() -> None:
        multiprocessing.connection.wait([sentinel])
        os._exit(_ORPHANED_EXIT_STATUS)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
