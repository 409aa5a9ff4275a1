"""dingo_serve under bad input and signals: malformed bodies of any shape are 400, every field is
validated before an alert is stored, replies hold no server paths, summary.json carries the
Pareto k and a reliability verdict, and SIGTERM runs the service's cleanup."""

import json
import signal
from types import SimpleNamespace

import numpy as np
import pytest
from fastapi.testclient import TestClient

from dingo_gw.design_curves import design_asd
from dingo_gw.serve.app import create_app
from dingo_gw.serve.config import load_serve_config
from dingo_gw.serve.worker import Service, summary_dict

GPS = 1126259462.4
INJECTION = {"chirp_mass": 30.0, "mass_ratio": 0.8, "a_1": 0.0, "a_2": 0.0, "tilt_1": 0.0, "tilt_2": 0.0,
             "phi_12": 0.0, "phi_jl": 0.0, "theta_jn": 0.4, "phase": 1.0, "luminosity_distance": 1300.0,
             "geocent_time": 0.0, "ra": 1.2, "dec": 0.3, "psi": 0.7}


@pytest.fixture(scope="module")
def setup(tiny_network, tmp_path_factory):
    root = tmp_path_factory.mktemp("serve_faults")
    (root / "data").mkdir()
    f = np.arange(0.0, 256.0, 0.25)
    np.savetxt(root / "data" / "psd.txt", np.column_stack([f, design_asd("aLIGOZeroDetHighPower", f, 10.0) ** 2]))
    (root / "data" / "corrupt.txt").write_text("not a PSD\n")
    config = root / "serve.yaml"
    config.write_text(json.dumps({
        "port": 0, "state_dir": "state", "results_dir": "results", "data_dirs": ["data"], "max_body_bytes": 65536,
        "networks": [{"name": "n", "path": str(tiny_network)}],
        "analysis": {"num_samples": 400, "workers": 1, "corner": False, "skymap": False}}))
    return root, config


def test_bad_alerts_are_refused_before_they_are_stored(setup):
    root, config = setup
    service = Service(load_serve_config(config))
    try:
        client = TestClient(create_app(service))
        good = {"alert_id": "S1", "gps": GPS, "detectors": ["H1", "L1"], "injection": INJECTION,
                "psd": {"H1": "psd.txt", "L1": "psd.txt"}}
        cases = [
            (b"[" * 60000, 400, "nested too deeply"),
            (b'{"alert_id": "S1", "gps": ' + b"1" * 5000 + b"}", 400, "malformed JSON"),
            (b"\xff\xfe{}", 400, "malformed JSON"),
            (json.dumps({**good, "psd": {"H1": "design:nosuch", "L1": "psd.txt"}}), 422, "unknown design PSD 'nosuch'"),
            (json.dumps({**good, "psd": {"H1": "corrupt.txt", "L1": "psd.txt"}}), 422, "PSD"),
            (json.dumps({**good, "strain": {"H1": "/etc/passwd"}}), 422, "not inside the service's data folders"),
            (json.dumps({**good, "chirp_mass": 1e9}), 422, "chirp_mass"),
            (json.dumps({**good, "injection": {**INJECTION, "ra": 1e9}}), 422, "outside the analysis prior"),
            (json.dumps({**good, "injection": {k: v for k, v in INJECTION.items() if k != "psi"}}), 422, "lack psi"),
            (json.dumps(good).replace("1300.0", "Infinity"), 422, "must be finite"),
            (json.dumps({**good, "gps": float("nan")}), 422, "finite positive GPS"),
        ]
        for body, status, text in cases:
            r = client.post("/alerts", content=body, headers={"content-type": "application/json"})
            assert r.status_code == status and text in r.json()["detail"], (text, r.text[-300:])
            assert str(root) not in r.text and "/etc" not in r.text
        assert service.store.counts() == {"queued": 0, "running": 0, "finished": 0, "failed": 0}
        assert str(root) not in client.get("/health").text
    finally:
        service.close()


def test_summary_carries_pareto_k_and_a_reliability_verdict():
    job = {"job_id": "S1.v1", "alert_id": "S1", "version": 1, "request": {"gps": GPS}, "network": "n"}

    def result(k, ok=True):
        return SimpleNamespace(status="ok" if ok else "failed_proposal", failure_reason="", log_evidence=1.0,
                               log_evidence_err=0.1, log_bayes_factor=2.0, n_eff=100.0, sample_efficiency=0.1,
                               num_samples=1000, ok=False, meta_data={"pareto_k": k})

    for k, verdict in ((0.77, False), (0.3, False), (float("nan"), None)):  # no posterior: never reliable
        out = summary_dict(job, result(k), {}, {}, None)
        assert out["reliable"] == verdict and (out["pareto_k"] is None) == (not np.isfinite(k))
    ok = result(0.3)
    ok.ok, ok.samples, ok.weights = True, {}, np.ones(1)
    ok.parameter_names = lambda: []
    assert summary_dict(job, ok, {}, {}, None)["reliable"] is True
    heavy = result(0.77)
    heavy.ok, heavy.samples, heavy.weights, heavy.parameter_names = True, {}, np.ones(1), lambda: []
    out = summary_dict(job, heavy, {}, {}, None)
    assert out["pareto_k"] == pytest.approx(0.77) and out["reliable"] is False


def test_sigterm_runs_the_cleanup(setup, service_process):
    root, config = setup
    service = service_process(config, root / "state").start()
    service.proc.send_signal(signal.SIGTERM)
    try:
        assert service.proc.wait(30) == 0
    finally:
        service.kill()
    log = config.with_suffix(".log").read_text()
    assert "dingo_serve stopped (SIGTERM)" in log and "Traceback" not in log, log[-3000:]
    Service(load_serve_config(config)).close()  # the state folder's lock was released
