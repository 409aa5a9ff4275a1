"""Directory watcher: alerts dropped as ``*.json`` files into a folder are submitted like POSTs.

Each file is submitted (persisted) first, then moved to ``accepted/`` (with the job id in its
name) or ``rejected/`` (with a ``.error.txt`` beside it). A crash between the two resubmits the
file at the next start, which is idempotent (same alert id and content: the same job). Files
still being written should be dropped under another name and renamed to ``*.json``.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from dingo_gw.serve.alert import AlertError

logger = logging.getLogger(__name__)


class DirectoryWatcher:
    """Polls ``folder`` every ``interval`` seconds and hands each alert file to ``submit``."""

    def __init__(self, folder: str | Path, submit, interval: float = 1.0, max_bytes: int = 65536):
        self.folder = Path(folder)
        self.submit, self.interval, self.max_bytes = submit, float(interval), int(max_bytes)
        for sub in ("", "accepted", "rejected"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll_once(self) -> int:
        """Submit every alert file present now; returns how many were handled."""
        n = 0
        for path in sorted(self.folder.glob("*.json")):
            n += 1
            try:
                if path.stat().st_size > self.max_bytes:
                    raise AlertError(413, f"alert file of {path.stat().st_size} bytes exceeds {self.max_bytes} bytes")
                job, created = self.submit(path.read_bytes())
            except AlertError as e:
                logger.warning("rejected alert file %s: %s", path.name, e)
                (self.folder / "rejected" / f"{path.name}.error.txt").write_text(f"{e.status}: {e}\n")
                os.replace(path, self.folder / "rejected" / path.name)
                continue
            os.replace(path, self.folder / "accepted" / f"{job['job_id']}{'' if created else '.duplicate'}.json")
        return n

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll_once()
            except OSError as e:  # a file vanished or the folder is unreadable: try again later
                logger.error("watching %s: %s", self.folder, e)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="dingo_serve-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2 * self.interval)
