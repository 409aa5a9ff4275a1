"""Result files in bilby's HDF5 format (the default): round trips through Result.load and bilby's
reader, bilby's layout, the JSON option, atomic writes on a full disk."""

import json
import logging
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from dingo_gw.io.hdf5 import to_jsonable
from dingo_gw.results import Result, add_derived_parameters

from test_results import make_result

logging.getLogger("bilby").setLevel(logging.WARNING)

#: meta_data of the shapes analyses write (refinement stages: lists of dicts), and what HDF5 names cannot hold
META = {
    "n_eff": 168.0, "num_proposal_samples": 400, "event": None, "ok": True, "detectors": ["H1", "L1"],
    "completed_from_prior": [], "empty": {}, "tuple": (1, 2.5), "mixed": [1, "a", None, True],
    "refinement": {"status": "done", "stages": [{"stage": "smc", "schedule": [{"beta": 0.2}, {"beta": 1.0}]},
                                                {"stage": "importance_sampling", "weights": [0.45, 0.45, 0.1]}],
                   "covariances": [[[1.0, 0.1], [0.1, 2.0]]], "flags": [True, False], "ragged": [[1], [2, 3]]},
    "psd": {"H1": {"path": "/data/H1 psd.txt"}}, "odd keys": {"a/b": 1, ".": 2},
}


def rich_result():
    res = make_result()
    res.meta_data = dict(META)
    return res


def assert_same(a: Result, b: Result):
    samples = add_derived_parameters(b.samples)  # files hold mass_1, mass_2, chi_eff too
    assert sorted(a.samples) == sorted(samples)
    for k in samples:
        np.testing.assert_array_equal(a.samples[k], samples[k])
    for name in ("log_weights", "log_likelihood", "log_prior", "log_proposal", "weights"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    for name in ("log_evidence", "log_evidence_err", "log_noise_evidence", "log_bayes_factor"):
        assert getattr(a, name) == getattr(b, name), name
    assert a.meta_data == to_jsonable(b.meta_data)
    assert a.injection_parameters == b.injection_parameters
    assert list(a.priors) == list(b.priors)
    for k in b.priors:  # (the restricted prior parser does not keep tex_labels, in either format)
        pa, pb = a.priors[k], b.priors[k]
        assert type(pa) is type(pb) and (pa.minimum, pa.maximum) == (pb.minimum, pb.maximum), k
    post = add_derived_parameters(b.posterior)
    assert sorted(a.posterior) == sorted(post)
    for k in post:
        np.testing.assert_array_equal(a.posterior[k], post[k])


def test_hdf5_is_the_default_and_round_trips(tmp_path):
    res = rich_result()
    path = res.save(tmp_path, "ev")
    assert path.name == "ev_result.hdf5" and sorted(p.name for p in tmp_path.iterdir()) == ["ev_result.hdf5"]
    assert_same(Result.load(path), res)


def test_json_option_round_trips_the_same(tmp_path):
    res = rich_result()
    from_json = Result.load(res.save(tmp_path, "ev", extension="json"))
    from_hdf5 = Result.load(res.save(tmp_path, "ev", extension="hdf5"))
    assert_same(from_json, res)
    assert from_json.meta_data == from_hdf5.meta_data
    assert [repr(from_json.priors[k]) for k in res.priors] == [repr(from_hdf5.priors[k]) for k in res.priors]


def test_bilby_reads_the_hdf5_result(tmp_path):
    import bilby

    res = rich_result()
    r = bilby.core.result.read_in_result(str(res.save(tmp_path, "ev")))
    post = add_derived_parameters(res.posterior)
    assert sorted(r.posterior.columns) == sorted(post)
    for k in post:
        np.testing.assert_array_equal(r.posterior[k].to_numpy(), post[k])
    np.testing.assert_array_equal(np.asarray(r.nested_samples["log_weights"]), res.log_weights)
    np.testing.assert_allclose(np.asarray(r.nested_samples["weights"]), res.weights, rtol=1e-15)
    assert r.log_evidence == res.log_evidence and r.log_bayes_factor == res.log_bayes_factor
    assert r.meta_data["refinement"]["stages"]["0"]["stage"] == "smc"  # bilby sees lists of dicts as groups
    assert r.meta_data["detectors"] == ["H1", "L1"] and r.meta_data["event"] is None
    assert list(r.priors) == list(res.priors)


def test_layout_is_bilbys_own(tmp_path):
    """Same groups and datasets as bilby's Result.save_to_file(extension="hdf5") writes; the weighted
    samples are the float64 datasets of /nested_samples."""
    import h5py

    res = make_result()
    ours = res.save(tmp_path / "ours", "ev")
    theirs = tmp_path / "bilby" / "ev_result.hdf5"
    res.to_bilby("ev", tmp_path / "bilby").save_to_file(extension="hdf5")

    def layout(path):
        names = {}
        with h5py.File(path, "r") as f:
            f.visititems(lambda name, obj: names.__setitem__(
                name, "group" if isinstance(obj, h5py.Group) else (obj.dtype.kind, obj.shape)))
        return names

    a, b = layout(ours), layout(theirs)
    assert a == b
    assert {f"nested_samples/{k}" for k in ("log_likelihood", "log_prior", "log_proposal", "log_weights",
                                            "weights", "chirp_mass")} <= set(a)
    assert a["nested_samples/log_weights"] == ("f", (res.num_samples,))


def test_full_disk_leaves_no_result(tmp_path):
    # RLIMIT_FSIZE makes writes past 20 kB fail (EFBIG) like a full disk: a clean DataError, no file left
    script = textwrap.dedent("""
        import resource, signal, sys
        sys.path.insert(0, sys.argv[2])
        from test_results import make_result
        from dingo_gw.errors import DataError
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        res = make_result()
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
        try:
            res.save(sys.argv[1], "ev")
        except DataError as e:
            print("DataError", e)
    """)
    r = subprocess.run([sys.executable, "-c", script, str(tmp_path), str(__import__("pathlib").Path(__file__).parent)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.startswith("DataError writing") and "partial file was removed" in r.stdout, r.stdout
    assert list(tmp_path.iterdir()) == []


def test_failed_proposal_report_stays_json(tmp_path):
    res = make_result()
    res.status, res.failure_reason, res.posterior = "failed_proposal", "n_eff = 2.00 < 10", None
    path = res.save(tmp_path, "ev")
    assert path.name == "ev_failed_proposal.json" and json.loads(path.read_text())["status"] == "failed_proposal"
