"""The SQLite job store alone: duplicates, versions, crash recovery, no double completion."""

import sqlite3

import pytest

from dingo_gw.errors import DataError
from dingo_gw.serve.store import JobStore


def test_duplicates_versions_and_requeue(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite")
    a, created = store.submit("S1", "h1", {"alert_id": "S1"}, {"gps": 1.0}, "net")
    assert created and a["job_id"] == "S1.v1" and a["status"] == "queued"
    again, created = store.submit("S1", "h1", {"alert_id": "S1"}, {"gps": 1.0}, "net")
    assert not created and again["job_id"] == "S1.v1"
    b, created = store.submit("S1", "h2", {"alert_id": "S1"}, {"gps": 2.0}, "net")
    assert created and b["job_id"] == "S1.v2" and b["request"] == {"gps": 2.0}
    store.submit("S2", "h3", {"alert_id": "S2"}, {"gps": 3.0}, "net")

    first = store.claim_next()
    assert first["job_id"] == "S1.v1" and first["status"] == "running" and first["attempts"] == 1
    store.close()  # "crash" with S1.v1 running

    store = JobStore(tmp_path / "jobs.sqlite")
    assert store.requeue_interrupted() == ["S1.v1"]
    order = [store.claim_next()["job_id"] for _ in range(3)]
    assert order == ["S1.v1", "S1.v2", "S2.v1"] and store.claim_next() is None
    store.finish("S1.v1", "ok", str(tmp_path), {"result": "r.json"}, {"total": 1.0})
    with pytest.raises(DataError, match="not running"):
        store.finish("S1.v1", "ok", str(tmp_path), {}, {})
    store.fail("S2.v1", "DataError: bad PSD")
    assert store.get("S1.v1")["attempts"] == 2 and store.get("S2.v1")["error"] == "DataError: bad PSD"
    assert store.counts() == {"queued": 0, "running": 1, "finished": 1, "failed": 1}
    assert [e["event"] for e in store.events("S1.v1")] == ["queued", "started", "requeued", "started", "finished"]
    store.close()

    con = sqlite3.connect(str(tmp_path / "jobs.sqlite"))  # an independent reader sees the same rows
    assert con.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 3
    con.close()


def test_corrupt_database_is_a_data_error(tmp_path):
    bad = tmp_path / "jobs.sqlite"
    bad.write_bytes(b"not a database" * 100)
    with pytest.raises(DataError, match="unusable"):
        JobStore(bad)
