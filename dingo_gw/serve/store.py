"""Persistent job store (SQLite, WAL, synchronous=FULL): the service's memory across crashes.

A job is committed to disk before the alert is acknowledged. Job ids are ``<alert_id>.v<N>``
(N = 1, 2, ... per alert; an update of an alert is a new version). Job states: queued -> running
-> finished (the analysis ran; ``outcome`` "ok" or "failed_proposal") or failed (an error, kept in
``error``). At start the service calls :meth:`JobStore.requeue_interrupted`: jobs left running
by a crash go back to the queue, so every acknowledged job finishes exactly once. Every
transition is logged in the ``events`` table (queued, started, requeued, finished, failed),
which is how "analysed exactly once" is audited. Times are Unix seconds.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

from dingo_gw.errors import DataError

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    alert_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    alert TEXT NOT NULL,
    request TEXT NOT NULL,
    network TEXT NOT NULL,
    status TEXT NOT NULL,
    outcome TEXT,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    result_dir TEXT,
    files TEXT,
    timings TEXT,
    UNIQUE (alert_id, version)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    event TEXT NOT NULL,
    time REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, created);
"""

STATES = ("queued", "running", "finished", "failed")


def job_id(alert_id: str, version: int) -> str:
    return f"{alert_id}.v{version}"


class JobStore:
    """The jobs table; thread-safe (one connection behind a lock)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
        except sqlite3.DatabaseError as e:
            raise DataError(f"job database {self.path} is unusable: {e}") from None
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- transactions --------------------------------------------------------------------------
    def _tx(self, fn):
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                out = fn(self._db)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return out

    @staticmethod
    def _event(db, job: str, event: str, t: float) -> None:
        db.execute("INSERT INTO events (job_id, event, time) VALUES (?, ?, ?)", (job, event, t))

    # -- writes --------------------------------------------------------------------------------
    def submit(self, alert_id: str, content_hash: str, alert: dict, request: dict, network: str) -> tuple[dict, bool]:
        """Queue a job for this alert content, or return the existing one: (job, created).

        The same content as the alert's latest version is a duplicate (not queued again); other
        content is a new version.
        """

        def fn(db):
            latest = db.execute("SELECT * FROM jobs WHERE alert_id = ? ORDER BY version DESC LIMIT 1",
                                (alert_id,)).fetchone()
            if latest is not None and latest["content_hash"] == content_hash:
                return _row(latest), False
            version = 1 if latest is None else latest["version"] + 1
            jid, now = job_id(alert_id, version), time.time()
            db.execute(
                "INSERT INTO jobs (job_id, alert_id, version, content_hash, alert, request, network, status, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', ?)",
                (jid, alert_id, version, content_hash, json.dumps(alert), json.dumps(request), network, now))
            self._event(db, jid, "queued", now)
            return _row(db.execute("SELECT * FROM jobs WHERE job_id = ?", (jid,)).fetchone()), True

        return self._tx(fn)

    def claim_next(self) -> dict | None:
        """The oldest queued job, marked running (None if the queue is empty)."""

        def fn(db):
            row = db.execute("SELECT * FROM jobs WHERE status = 'queued' ORDER BY created, rowid LIMIT 1").fetchone()
            if row is None:
                return None
            now = time.time()
            db.execute("UPDATE jobs SET status = 'running', started = ?, attempts = attempts + 1 WHERE job_id = ?",
                       (now, row["job_id"]))
            self._event(db, row["job_id"], "started", now)
            return _row(db.execute("SELECT * FROM jobs WHERE job_id = ?", (row["job_id"],)).fetchone())

        return self._tx(fn)

    def _close_job(self, jid: str, status: str, **fields) -> None:
        def fn(db):
            now = time.time()
            cols = ", ".join(f"{k} = ?" for k in fields)
            cur = db.execute(f"UPDATE jobs SET status = ?, finished = ?, {cols} WHERE job_id = ? AND status = 'running'",
                             (status, now, *fields.values(), jid))
            if cur.rowcount != 1:
                raise DataError(f"job {jid} is not running; cannot mark it {status}")
            self._event(db, jid, status, now)

        self._tx(fn)

    def finish(self, jid: str, outcome: str, result_dir: str, files: dict, timings: dict) -> None:
        """Mark a running job finished (the analysis ran; ``outcome`` ok or failed_proposal)."""
        self._close_job(jid, "finished", outcome=outcome, result_dir=result_dir, files=json.dumps(files),
                        timings=json.dumps(timings))

    def fail(self, jid: str, error: str, timings: dict | None = None) -> None:
        """Mark a running job failed with a one-line error."""
        self._close_job(jid, "failed", error=error, timings=json.dumps(timings or {}))

    def requeue_interrupted(self) -> list[str]:
        """Jobs left running (the service died during their analysis) back to the queue."""

        def fn(db):
            ids = [r["job_id"] for r in db.execute("SELECT job_id FROM jobs WHERE status = 'running'")]
            now = time.time()
            for jid in ids:
                db.execute("UPDATE jobs SET status = 'queued', started = NULL WHERE job_id = ?", (jid,))
                self._event(db, jid, "requeued", now)
            return ids

        return self._tx(fn)

    # -- reads ---------------------------------------------------------------------------------
    def _query(self, sql: str, args=()) -> list[dict]:
        with self._lock:
            return [_row(r) for r in self._db.execute(sql, args).fetchall()]

    def get(self, jid: str) -> dict | None:
        rows = self._query("SELECT * FROM jobs WHERE job_id = ?", (jid,))
        return rows[0] if rows else None

    def versions(self, alert_id: str) -> list[dict]:
        return self._query("SELECT * FROM jobs WHERE alert_id = ? ORDER BY version", (alert_id,))

    def jobs(self, status: str | None = None, limit: int = 100) -> list[dict]:
        if status is None:
            return self._query("SELECT * FROM jobs ORDER BY created DESC LIMIT ?", (limit,))
        return self._query("SELECT * FROM jobs WHERE status = ? ORDER BY created DESC LIMIT ?", (status, limit))

    def events(self, jid: str) -> list[dict]:
        return self._query("SELECT event, time FROM events WHERE job_id = ? ORDER BY id", (jid,))

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall()
        out = dict.fromkeys(STATES, 0)
        out.update({r[0]: r[1] for r in rows})
        return out


def _row(r: sqlite3.Row) -> dict:
    d = dict(r)
    for k in ("alert", "request", "files", "timings"):
        if d.get(k):
            d[k] = json.loads(d[k])
    return d
