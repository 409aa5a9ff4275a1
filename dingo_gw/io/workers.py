"""Worker processes that never outlive their parent.

A pool worker blocks on its task queue forever if the parent is killed with SIGKILL (the queue
never closes); :func:`init_worker` starts a thread that ends the worker within ``interval``
seconds of the parent's death, and leaves SIGINT to the parent, which stops the pool itself.
"""

from __future__ import annotations

import os
import signal
import threading
import time


def watch_parent(interval: float = 0.5) -> None:
    """Exit this process (status 1, no cleanup) as soon as its parent process is gone."""
    import multiprocessing

    spawner = multiprocessing.parent_process()  # the parent may have died while this process started
    parent = spawner.pid if spawner is not None and spawner.pid is not None else os.getppid()
    if os.getppid() != parent:
        os._exit(1)

    def watch():
        while True:
            time.sleep(interval)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="dingo_gw-parent-watch", daemon=True).start()


def init_worker() -> None:
    """Initializer of dingo_gw's pool workers: ignore SIGINT (Ctrl-C reaches the whole process
    group; the parent stops the pool) and exit when the parent dies."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    watch_parent()
