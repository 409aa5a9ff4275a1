"""The real ``dingo_serve`` (uvicorn subprocess on a loopback port) with a tiny network:

- good alerts (GW150914 strain found by GPS in the data folders; injections) are acknowledged at
  once and finish; results are served; the bilby result / failed-proposal report and summary agree;
- the same alert twice is one job; an update (new GPS) is version 2;
- malformed JSON, schema errors, unknown detectors, GPS without data, no network for the
  detectors, oversized bodies: 4xx with a clear message, and the service goes on;
- a corrupt PSD file is refused up front (422), before the alert is stored;
- the network is chosen by the chirp-mass estimate;
- kill -9 with jobs queued and one running, restart: every acknowledged job finishes exactly once
  (the events table and the result folders are counted);
- alert files dropped into the watched folder are submitted.
"""

import json
import sqlite3
import time

import httpx
import numpy as np
import pytest

from dingo_gw.design_curves import design_asd

GW150914_GPS = 1126259462.4
NO_SPIN = {"a_1": 0.0, "a_2": 0.0, "tilt_1": 0.0, "tilt_2": 0.0, "phi_12": 0.0, "phi_jl": 0.0}

INJECTION = {"chirp_mass": 30.0, "mass_ratio": 0.8, **NO_SPIN, "theta_jn": 0.4, "phase": 1.0,
             "luminosity_distance": 1300.0, "geocent_time": 0.0, "ra": 1.2, "dec": 0.3, "psi": 0.7}
DONE = ("finished", "failed")


def _injection_alert(alert_id, **kw):
    alert = {"alert_id": alert_id, "gps": GW150914_GPS, "detectors": ["H1", "L1"],
             "psd": {"H1": "psd3.txt", "L1": "psd3.txt"}, "injection": INJECTION}
    alert.update(kw)
    return alert


def _wait(client, job_ids, timeout=120.0):
    t0, out = time.monotonic(), {}
    while time.monotonic() - t0 < timeout:
        out = {j: client.get(f"/alerts/{j}").json() for j in job_ids}  # 404 {"detail"} until submitted
        if all(s.get("status") in DONE for s in out.values()):
            return out
        time.sleep(0.2)
    raise AssertionError(f"jobs did not finish in time: {out}")


def _db(state):
    con = sqlite3.connect(str(state / "jobs.sqlite"))
    jobs = {r[0]: r[1:] for r in con.execute("SELECT job_id, status, network, attempts FROM jobs")}
    events = {}
    for jid, ev in con.execute("SELECT job_id, event FROM events ORDER BY id"):
        events.setdefault(jid, []).append(ev)
    con.close()
    return jobs, events


@pytest.fixture(scope="module")
def service_setup(tiny_network, tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    data = root / "data"
    data.mkdir()
    f = np.arange(0.0, 256.0, 0.25)
    np.savetxt(data / "psd3.txt", np.column_stack([f, 9 * design_asd("aLIGOZeroDetHighPower", f, fill_below=10.0) ** 2]))
    (data / "psd_corrupt.txt").write_text("this is not a PSD\n")
    config = root / "serve.yaml"
    config.write_text(json.dumps({
        "port": 0, "state_dir": "state", "results_dir": "results", "data_dirs": ["data"], "watch_dir": "inbox",
        "watch_interval": 0.2, "max_body_bytes": 4096,
        "networks": [{"name": "light", "path": str(tiny_network), "chirp_mass": [25.0, 30.0]},
                     {"name": "heavy", "path": str(tiny_network), "chirp_mass": [30.0, 35.0]}],
        "analysis": {"num_samples": 400, "workers": 1, "corner": False, "skymap_samples": 300},
    }))  # JSON is YAML
    return root, config


def test_alerts_are_validated_acknowledged_and_analysed_once(service_setup, service_process):
    root, config = service_setup
    service = service_process(config, root / "state").start()
    try:
        with httpx.Client(base_url=service.url, timeout=30) as client:
            # good alerts: real strain found by GPS (chirp-mass estimate picks "heavy"), an injection
            r = client.post("/alerts", json={"alert_id": "S150914a", "gps": GW150914_GPS, "detectors": ["H1", "L1"],
                                             "chirp_mass": 31.0})
            assert r.status_code == 202, r.text
            real = r.json()
            assert real["job_id"] == "S150914a.v1" and real["duplicate"] is False and real["network"] == "heavy"
            r = client.post("/alerts", json=_injection_alert("Sinj1", chirp_mass=27.0))
            assert r.status_code == 202 and r.json()["network"] == "light"
            # duplicate: same job, not queued again; update: version 2
            r = client.post("/alerts", json={"alert_id": "S150914a", "gps": GW150914_GPS, "detectors": ["H1", "L1"],
                                             "chirp_mass": 31.0})
            assert r.status_code == 200 and r.json()["job_id"] == "S150914a.v1" and r.json()["duplicate"] is True
            r = client.post("/alerts", json={"alert_id": "S150914a", "gps": GW150914_GPS + 0.1,
                                             "detectors": ["H1", "L1"], "chirp_mass": 31.0})
            assert r.status_code == 202 and r.json()["job_id"] == "S150914a.v2"
            # the PSD file is not a PSD: refused before it is stored (it used to fail in the analysis)
            r = client.post("/alerts", json=_injection_alert("Sbadpsd", psd={"H1": "psd_corrupt.txt",
                                                                             "L1": "psd_corrupt.txt"}))
            assert r.status_code == 422 and "PSD" in r.json()["detail"] and "/" not in r.json()["detail"], r.text

            # bad alerts: 4xx with one clear message each
            bad = [
                (b"{not json", 400, "malformed JSON"),
                (json.dumps({"gps": GW150914_GPS, "detectors": ["H1"]}).encode(), 422, "alert_id: required key"),
                (json.dumps({"alert_id": "x", "gps": GW150914_GPS, "detectors": ["H1", "X1"]}).encode(), 422,
                 "unknown detector 'X1'"),
                (json.dumps({"alert_id": "x", "gps": 1.0e9, "detectors": ["H1", "L1"]}).encode(), 422,
                 "no H1 strain file covering"),
                (json.dumps({"alert_id": "x", "gps": GW150914_GPS, "detectors": ["H1"]}).encode(), 422,
                 "no configured network takes detectors H1"),
                (json.dumps({"alert_id": "x", "gps": GW150914_GPS, "detectors": ["H1", "L1"],
                             "strain": {"H1": "/etc/passwd"}}).encode(), 422, "not inside the service's data folders"),
                (json.dumps({"alert_id": "x", "gps": GW150914_GPS, "detectors": ["H1", "L1"], "extra": "y" * 5000}
                            ).encode(), 413, "exceeds the limit of 4096 bytes"),
                (json.dumps([1, 2]).encode(), 422, "must be a JSON object"),
            ]
            for body, status, text in bad:
                r = client.post("/alerts", content=body, headers={"content-type": "application/json"})
                assert r.status_code == status, (body[:80], r.text)
                assert text in r.json()["detail"]
            assert client.get("/alerts/x").status_code == 404

            ids = ["S150914a.v1", "Sinj1.v1", "S150914a.v2"]
            status = _wait(client, ids)
            for jid in ids:
                s = status[jid]
                assert s["status"] == "finished" and s["outcome"] in ("ok", "failed_proposal")
                assert s["latency"] > 0 and s["timings"]["sampling"] > 0
                assert ("skymap" in s["files"]) == (s["outcome"] == "ok")
                summary = client.get(s["files"]["summary"]).json()
                assert summary["outcome"] == s["outcome"] and summary["gps"] == s["alert"]["gps"]
                k = summary["pareto_k"]
                assert summary["reliable"] == (None if k is None else (s["outcome"] == "ok" and k <= 0.7))
                kind = "result" if s["outcome"] == "ok" else "failed_proposal"
                report = client.get(s["files"]["result"])
                assert report.status_code == 200 and s["files"]["result"].endswith(f"{jid}_{kind}.json")
            assert client.get("/alerts/S150914a").json()["job_id"] == "S150914a.v2"  # latest version
            assert client.get("/alerts/S150914a.v1/files/..%2Fjobs.sqlite").status_code == 404
            assert client.get("/health").json()["jobs"] == {"queued": 0, "running": 0, "finished": 3, "failed": 0}

            # the watched folder: a good alert file is submitted like a POST, a bad one rejected
            (root / "inbox" / "drop.json").write_text(json.dumps(_injection_alert("Sdrop")))
            (root / "inbox" / "broken.json").write_text("{")
            _wait(client, ["Sdrop.v1"], timeout=60)
            for _ in range(50):
                if (root / "inbox" / "rejected" / "broken.json").exists():
                    break
                time.sleep(0.1)
            assert (root / "inbox" / "accepted" / "Sdrop.v1.json").exists()
            assert "malformed JSON" in (root / "inbox" / "rejected" / "broken.json.error.txt").read_text()

            # kill -9 with one job running and others queued
            queued = []
            for i in range(4):
                r = client.post("/alerts", json=_injection_alert(f"Sburst{i}", injection={**INJECTION,
                                                                                            "luminosity_distance": 900.0 + 100 * i}))
                assert r.status_code == 202
                queued.append(r.json()["job_id"])
            t0 = time.monotonic()
            while client.get(f"/alerts/{queued[0]}").json()["status"] != "running":
                assert time.monotonic() - t0 < 30
                time.sleep(0.05)
    finally:
        service.kill()  # SIGKILL

    jobs, events = _db(root / "state")
    assert set(queued) <= set(jobs)  # every acknowledged alert was on disk before its reply
    interrupted = [j for j in queued if jobs[j][0] == "running"]
    assert interrupted and any(jobs[j][0] == "queued" for j in queued)

    service = service_process(config, root / "state").start()
    try:
        with httpx.Client(base_url=service.url, timeout=30) as client:
            final = _wait(client, queued)
            assert all(s["status"] == "finished" for s in final.values())
            # resending an acknowledged alert after the restart is still a duplicate
            r = client.post("/alerts", json=_injection_alert("Sinj1", chirp_mass=27.0))
            assert r.status_code == 200 and r.json()["job_id"] == "Sinj1.v1"
    finally:
        service.kill()

    jobs, events = _db(root / "state")
    assert len(jobs) == 8  # the corrupt-PSD alert is refused before it is stored
    for jid, evs in events.items():
        assert evs[0] == "queued" and evs.count("queued") == 1
        assert evs.count("finished") + evs.count("failed") == 1, (jid, evs)
        assert evs.count("started") == 1 + evs.count("requeued"), (jid, evs)
    for jid in interrupted:
        assert events[jid] == ["queued", "started", "requeued", "started", "finished"]
    for jid in jobs:
        folder = root / "results" / jid
        if jobs[jid][0] == "finished":
            names = [p.name for p in folder.iterdir() if not p.name.startswith(".")]
            assert len([n for n in names if n.endswith(("_result.hdf5", "_failed_proposal.json"))]) == 1, names
            assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no staging or checkpoints left
