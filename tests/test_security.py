"""No input file runs code: every loader of prior strings and of result files gets a planted payload
that would create a marker file; the loader must refuse it with one ``error:`` line (exit 2) and
the marker must not exist. A check per payload that bilby's own parser *does* run it keeps these
tests honest (a payload that never ran would prove nothing). Training checkpoints:
tests/train/test_train_security.py."""

import json
import logging
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml

from dingo_gw.errors import ConfigError, FileFormatError
from dingo_gw.prior_parser import parse_prior, read_prior_file
from dingo_gw.priors import DEFAULT_EXTRINSIC_PRIOR, DEFAULT_INTRINSIC_PRIOR, build_prior, sample_prior

logging.getLogger("bilby").setLevel(logging.WARNING)

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_NETWORK = ROOT / "data" / "networks" / "default" / "network.pt"
# the names the prior parser accepts, spelled out here independently of dingo_gw
GW = "bilby.gw.prior."


def payload(marker: Path) -> str:
    """A prior string whose evaluation by bilby creates ``marker`` (no spaces: survives .prior files).

    Once run, it yields minimum > maximum, so even a loader that ran it fails instead of going on
    (a regression shows up as a present marker, never as an analysis or a server that runs on)."""
    return f"Uniform(minimum=[__import__('pathlib').Path('{marker}').touch(),2][1],maximum=1)"


def run_cli(main, argv, capsys) -> str:
    """Run a console entry point; assert exit status 2 and one ``error:`` line; return that line."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = [line for line in capsys.readouterr().err.strip().splitlines() if line.startswith("error:")]
    assert len(err) == 1, err
    return err[0]


@pytest.fixture
def marker(tmp_path) -> Path:
    m = tmp_path / "pwned"
    yield m
    assert not m.exists(), "the planted payload ran"


def test_payload_is_live_in_bilby(tmp_path):
    """The payloads below do run code when bilby parses them (so the other tests can fail)."""
    import bilby

    m = tmp_path / "ran"
    try:
        bilby.core.prior.PriorDict(dictionary={"a": payload(m)})
    except Exception:
        pass
    assert m.exists()
    m2 = tmp_path / "ran_result"
    path = tmp_path / "x_result.json"
    path.write_text(json.dumps({"meta_data": _os_system_object(m2)}))
    try:
        bilby.core.result.read_in_result(str(path))
    except Exception:
        pass
    assert m2.exists()


# -- the parser itself -------------------------------------------------------------------------

@pytest.mark.parametrize("value, refused", [
    ("[__import__('os').system('true')][0]", "Subscript"),
    ("__import__('os').system('true')", "is not allowed"),
    ("os.system('true')", "prior class 'os.system' is not allowed"),
    ("Uniform(0, __import__('os').getpid())", "is not allowed"),
    ("Uniform(minimum=0, maximum=1, name=open('x').read())", "is not allowed"),
    ("Uniform(0, (1).__class__)", "Attribute"),
    ("Uniform(0, x)", "'x' is not allowed"),
    ("Uniform(0, np.exp(1))", "is not allowed"),
    ("Uniform(0, 1, latex_label=f'{x}')", "JoinedStr"),
    ("Uniform(0, (lambda: 1)())", "is not allowed"),
    ("Uniform(0, [i for i in range(3)])", "ListComp"),
    ("Uniform(0, 1, boundary='exec')", "boundary='exec' is not allowed"),
    ("Uniform(0, 1, unit=3.0)", "is not allowed"),
    ("Uniform(0, '1')", "maximum='1' is not allowed"),
    ("Uniform(*[0, 1])", "*args"),
    ("bilby.core.prior.Interped(xx=1, yy=2)", "not allowed"),
    ("bilby.core.prior.FromFile(file_name='/etc/passwd')", "not allowed"),
    ("bilby.core.prior.UniformComovingVolume(100, 2000)", "not allowed"),  # gw class, core module
    (f"{GW}UniformComovingVolume(100, 2000, cosmology=FlatLambdaCDM(70, 0.3), name='luminosity_distance')",
     "not allowed"),
    (f"{GW}UniformComovingVolume(100, 2000, cosmology='Nope', name='luminosity_distance')",
     "cosmology='Nope' is not allowed"),
    (f"{GW}AlignedSpin(a_prior={GW}AlignedSpin(), z_prior=Uniform(-1, 1))", "must be a bilby.core.prior class"),
    ("Uniform(0, 1, name=Uniform(0, 1))", "is not allowed"),
    ("Uniform(0, " + "(" * 300 + "1" + ")" * 300 + ")", "not a valid expression"),
    ("Uniform(" * 400 + ")" * 400, "longer than 2000 characters"),
    ("Uniform(0, 1", "not a valid expression"),
    ("Unifrom(0, 1)", "prior class 'Unifrom' is not allowed"),
    ("Uniform(maximum=1)", "missing a required argument"),
    ("9" * 1000, "number too large"),
])
def test_parser_refuses(value, refused):
    with pytest.raises(ConfigError) as e:
        parse_prior("chirp_mass", value)
    msg = str(e.value)
    assert msg.startswith("prior.chirp_mass: invalid bilby prior") and refused in msg, msg
    assert "\n" not in msg


@pytest.mark.parametrize("value, expected", [
    ("Uniform(0, 2 * np.pi, boundary='periodic')", ("Uniform", 0.0, 2 * np.pi)),
    ("bilby.core.prior.Uniform(minimum=-1e-3, maximum=+2.5E2)", ("Uniform", -1e-3, 250.0)),
    ("Sine()", ("Sine", 0.0, np.pi)),
    ("Cosine(minimum=-pi/2, maximum=math.pi/2)", ("Cosine", -np.pi / 2, np.pi / 2)),
    ("Constraint(5, 200)", ("Constraint", 5, 200)),
    (f"{GW}Uniform(0, 1)", ("Uniform", 0, 1)),
])
def test_parser_accepts_numeric_forms(value, expected):
    p = parse_prior("x", value)
    assert (type(p).__name__, p.minimum, p.maximum) == pytest.approx(expected)
    assert p.name == "x"
    assert parse_prior("x", " 3.5 ").peak == 3.5  # a number: a DeltaFunction, as bilby does


def _legitimate_specs():
    """Every prior string the project ships: defaults, configs/ (yaml), the shipped network."""
    specs = {"DEFAULT_INTRINSIC_PRIOR": DEFAULT_INTRINSIC_PRIOR, "DEFAULT_EXTRINSIC_PRIOR": DEFAULT_EXTRINSIC_PRIOR}
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        cfg = yaml.safe_load(path.read_text()) or {}
        for section in (cfg, cfg.get("data") or {}):
            for key in ("prior", "extrinsic_prior"):
                if isinstance(section.get(key), dict):
                    specs[f"{path.name}:{key}"] = section[key]
    meta = torch.load(SHIPPED_NETWORK, weights_only=True, map_location="cpu")["metadata"]
    for key in ("prior", "intrinsic_prior", "extrinsic_prior"):
        specs[f"network.pt:{key}"] = meta[key]
    specs["aligned spins (docs, tests)"] = {
        "chi_1": f"{GW}AlignedSpin(a_prior=Uniform(0, 0.8), z_prior=Uniform(-1, 1))",
        "luminosity_distance": "PowerLaw(alpha=2, minimum=50, maximum=1500)", "psi": "Gaussian(mu=0, sigma=1)",
        "mass_ratio": 0.8,
    }
    return specs


def _same_as_bilby(ours, spec):
    import bilby

    ref = bilby.gw.prior.BBHPriorDict(dictionary=dict(spec))  # bilby's eval: trusted inputs only
    assert list(ours) == list(ref)
    for k in spec:
        a, b = ours[k], ref[k]
        assert type(a) is type(b), k
        # bilby doubles the backslashes of a latex label at each parse of a repr; we keep the label
        la, lb = a.latex_label, b.latex_label
        assert la == lb or la == (lb or "").replace("\\\\", "\\"), (k, la, lb)
        assert a.name == (b.name or k)
        b.latex_label, b.name = la, a.name
        assert repr(a) == repr(b), k
        simple = (int, float, str, bool, type(None))
        assert {n: v for n, v in vars(a).items() if isinstance(v, simple)} == \
            {n: v for n, v in vars(b).items() if isinstance(v, simple)}, k
    x, y = sample_prior(ours, 200, seed=4), sample_prior(ref, 200, seed=4)
    assert x.keys() == y.keys()
    for k in x:
        np.testing.assert_array_equal(x[k], y[k])
        np.testing.assert_array_equal(ours[k].ln_prob(x[k]), ref[k].ln_prob(x[k]))


def test_every_shipped_prior_parses_to_what_bilby_gives():
    specs = _legitimate_specs()
    assert "network.pt:prior" in specs and len(specs["network.pt:prior"]) >= 15
    for where, spec in specs.items():
        strings = {k: v for k, v in spec.items() if isinstance(v, str)}  # numbers never reach a parser
        _same_as_bilby(build_prior(strings), strings)


def test_prior_file_parses_like_bilby(tmp_path):
    import bilby

    path = tmp_path / "bbh.prior"
    path.write_text(
        "# a bilby prior file\n\n"
        "chirp_mass = bilby.gw.prior.UniformInComponentsChirpMass(name='chirp_mass', minimum=25, maximum=35)\n"
        "mass_ratio = bilby.gw.prior.UniformInComponentsMassRatio(name='mass_ratio', minimum=0.5, maximum=1)\n"
        "phase = Uniform(name='phase', minimum=0, maximum=2 * np.pi, boundary='periodic')\n"
        "theta_jn = Sine(name='theta_jn')\n"
        "a_1 = 0.1\n"
    )
    ours = build_prior(path)
    ref = bilby.gw.prior.BBHPriorDict(filename=str(path))
    assert list(ours) == list(ref)
    for k in ref:
        assert repr(ours[k]) == repr(ref[k]).replace("name=None", f"name='{k}'"), k
    assert read_prior_file(path)["a_1"].peak == 0.1


# -- the loaders --------------------------------------------------------------------------------

def test_prior_file_payload_is_refused(tmp_path, marker, capsys):
    from dingo_gw.cli.generate_dataset import main

    (tmp_path / "evil.prior").write_text(f"chirp_mass = {payload(marker)}\n")
    cfg = yaml.safe_load((ROOT / "configs" / "bank_tiny.yaml").read_text())
    cfg["prior"] = "evil.prior"  # relative to the config's folder
    (tmp_path / "bank.yaml").write_text(yaml.safe_dump(cfg))
    line = run_cli(main, ["--config", str(tmp_path / "bank.yaml"), "--out", str(tmp_path / "bank.h5")], capsys)
    assert "evil.prior" in line and "prior.chirp_mass" in line and "is not allowed" in line
    with pytest.raises(ConfigError):
        read_prior_file(tmp_path / "evil.prior")
    assert not (tmp_path / "bank.h5").exists()


def test_bank_config_payload_is_refused(tmp_path, marker, capsys):
    from dingo_gw.cli.generate_dataset import main

    cfg = yaml.safe_load((ROOT / "configs" / "bank_tiny.yaml").read_text())
    cfg["prior"] = {**DEFAULT_INTRINSIC_PRIOR, "a_1": payload(marker)}
    (tmp_path / "bank.yaml").write_text(yaml.safe_dump(cfg))
    line = run_cli(main, ["--config", str(tmp_path / "bank.yaml"), "--out", str(tmp_path / "bank.h5")], capsys)
    assert "prior.a_1: invalid bilby prior" in line and "is not allowed" in line
    assert not (tmp_path / "bank.h5").exists()


@pytest.fixture(scope="module")
def network_dict():
    return torch.load(SHIPPED_NETWORK, weights_only=True, map_location="cpu")


def poisoned_network(network_dict, path: Path, key: str, marker: Path) -> Path:
    """A copy of the shipped network whose metadata[key]['ra'] holds the payload (loads with weights_only)."""
    d = dict(network_dict)
    meta = dict(d["metadata"])
    meta[key] = {**meta[key], "ra": payload(marker)}
    if key != "prior":
        meta.pop("prior")
    d["metadata"] = meta
    torch.save(d, path)
    torch.load(path, weights_only=True)  # the file is a valid weights-only torch file
    return path


@pytest.mark.parametrize("key", ["prior", "extrinsic_prior"])
def test_network_metadata_payload_is_refused_by_analyze(network_dict, tmp_path, marker, capsys, key):
    from dingo_gw.cli.analyze import main

    net = poisoned_network(network_dict, tmp_path / "net.pt", key, marker)
    line = run_cli(main, ["--network", str(net), "--event", "GW150914", "--outdir", str(tmp_path / "out"),
                          "--no-progress"], capsys)
    assert "invalid prior in the network metadata" in line and "prior.ra" in line
    assert not list(tmp_path.glob("out/*_result.*"))


def test_network_metadata_payload_is_refused_by_serve(network_dict, tmp_path, marker, capsys):
    from dingo_gw.cli.serve import main
    from dingo_gw.serve.networks import NetworkRegistry

    net = poisoned_network(network_dict, tmp_path / "net.pt", "prior", marker)
    with pytest.raises(FileFormatError, match="prior.ra"):
        NetworkRegistry.load([SimpleNamespace(name="evil", path=str(net), chirp_mass=None)])
    cfg = {"host": "127.0.0.1", "port": 0, "state_dir": str(tmp_path / "state"),
           "results_dir": str(tmp_path / "results"), "networks": [{"name": "evil", "path": str(net)}]}
    (tmp_path / "serve.yaml").write_text(yaml.safe_dump(cfg))
    line = run_cli(main, ["--config", str(tmp_path / "serve.yaml")], capsys)
    assert "invalid prior in the network metadata" in line and "prior.ra" in line


def test_proposal_file_payload_is_refused_by_is_part(tmp_path, marker, capsys):
    """A proposal file (dingo_analyze --is-parts) whose stored prior strings hold the payload."""
    from dingo_gw.cli.analyze import main
    from dingo_gw.domain import FrequencyDomain
    from dingo_gw.inference.importance.parts import save_proposal

    domain = FrequencyDomain(20.0, 128.0, 0.5)
    n = 8
    proposal = SimpleNamespace(samples={"chirp_mass": np.full(n, 30.0), "ra": np.full(n, 1.0)},
                               log_prob=np.zeros(n), accepted=np.ones(n, bool), proxies=None)
    event_data = SimpleNamespace(domain=domain, trigger_time=1126259462.4, segment_start=1126259460.4,
                                 strain={"H1": np.zeros(len(domain.frequencies), complex)},
                                 psds={"H1": np.ones(len(domain.frequencies))})
    prior = {**DEFAULT_INTRINSIC_PRIOR, **DEFAULT_EXTRINSIC_PRIOR, "ra": payload(marker)}
    network = SimpleNamespace(domain=domain, waveform={"approximant": "IMRPhenomD", "f_ref": 20.0},
                              metadata={"prior": prior})
    settings = SimpleNamespace(outdir=tmp_path / "run", seed=0, is_parts=2, num_posterior_samples=None,
                               corner=False)
    path = save_proposal(tmp_path / "ev_proposal.h5", proposal, event_data, network, settings, "ev",
                         meta={}, injection_parameters=None, timings={})
    line = run_cli(main, ["--proposal", str(path), "--is-part", "1", "--workers", "1", "--no-progress"], capsys)
    assert "prior.ra" in line and "is not allowed" in line
    assert not (tmp_path / "ev_is_parts").exists() or not any((tmp_path / "ev_is_parts").iterdir())


# -- result files --------------------------------------------------------------------------------

def _os_system_object(marker: Path) -> dict:
    return {"__prior__": True, "__module__": "os", "__name__": "system", "kwargs": {"command": f"touch {marker}"}}


def _saved_result(tmp_path, extension="json") -> Path:
    from test_results import make_result

    return make_result().save(tmp_path / "res", "ev", extension=extension)


@pytest.mark.parametrize("where", ["priors", "meta_data", "posterior"])
def test_result_json_payload_is_refused_by_summary(tmp_path, marker, capsys, where):
    from dingo_gw.cli.result import main

    path = _saved_result(tmp_path)
    d = json.loads(path.read_text())
    if where == "priors":
        d["priors"]["ra"] = _os_system_object(marker)
    elif where == "meta_data":
        d["meta_data"]["note"] = _os_system_object(marker)
    else:  # a dataframe replaced by an object naming a function
        d["posterior"] = {"__function__": True, "__module__": "os", "__name__": "system"}
    path.write_text(json.dumps(d))
    line = run_cli(main, ["summary", str(path)], capsys)
    assert str(path) in line and ("refused" in line), line
    if where != "posterior":
        assert "os" in line and "system" in line


def test_result_hdf5_class_markers_are_refused(tmp_path, marker):
    import h5py

    from dingo_gw.results import Result

    path = _saved_result(tmp_path, "hdf5")
    with h5py.File(path, "r+") as f:
        priors = json.loads(f["priors"][()])
        priors["ra"] = _os_system_object(marker)
        del f["priors"]
        f["priors"] = json.dumps(priors)
    with pytest.raises(FileFormatError, match="refused prior"):
        Result.load(path)


@pytest.mark.parametrize("where", ["meta_data", "posterior", "injection_parameters", "list_item"])
def test_result_hdf5_planted_class_marker_is_refused(tmp_path, marker, capsys, where):
    """A group naming a function (what bilby's hdf5 reader imports and calls) is refused, wherever it is."""
    import h5py

    from dingo_gw.cli.result import main

    path = _saved_result(tmp_path, "hdf5")
    with h5py.File(path, "r+") as f:
        group = {"meta_data": "meta_data/note", "posterior": "posterior", "injection_parameters": "injection_parameters",
                 "list_item": "meta_data/stages"}[where]
        if group in f:
            del f[group]
        g = f.create_group(group)
        if where == "list_item":  # inside a list group of dingo_gw's encoding
            g.attrs["dingo_gw_type"] = "list"
            g = g.create_group("0")
        g["__function__"], g["__module__"], g["__name__"] = True, "os", "system"
    line = run_cli(main, ["summary", str(path)], capsys)
    assert str(path) in line and "refused" in line and "os.system" in line, line


@pytest.mark.parametrize("kind", ["external_link", "soft_link", "reference"])
def test_result_hdf5_links_and_references_are_refused(tmp_path, kind):
    import h5py

    from dingo_gw.results import Result

    path = _saved_result(tmp_path, "hdf5")
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["secret"] = 1.0
    with h5py.File(path, "r+") as f:
        if kind == "external_link":
            f["meta_data/note"] = h5py.ExternalLink(str(other), "secret")
        elif kind == "soft_link":
            f["meta_data/note"] = h5py.SoftLink("/log_evidence")
        else:
            f.create_dataset("meta_data/note", data=f["log_evidence"].ref, dtype=h5py.ref_dtype)
    with pytest.raises(FileFormatError, match="refused"):
        Result.load(path)


def test_result_pickle_is_refused(tmp_path):
    from dingo_gw.results import Result

    path = tmp_path / "ev_result.pkl"
    path.write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(FileFormatError, match="expected .json or .hdf5"):
        Result.load(path)


@pytest.mark.parametrize("extension", ["json", "hdf5"])
def test_own_result_files_read_back_unchanged(tmp_path, extension):
    """The safe reader gives what bilby's reader gives for the project's own files."""
    import bilby

    from dingo_gw.results import Result

    path = _saved_result(tmp_path, extension)
    ours, ref = Result.load(path), bilby.core.result.read_in_result(str(path))
    assert ours.log_evidence == ref.log_evidence and ours.log_bayes_factor == ref.log_bayes_factor
    assert ours.meta_data == dict(ref.meta_data)
    assert ours.injection_parameters == dict(ref.injection_parameters)
    assert set(ours.posterior) == set(ref.posterior.columns)
    for k in ours.posterior:
        np.testing.assert_array_equal(ours.posterior[k], ref.posterior[k].to_numpy())
    np.testing.assert_array_equal(ours.log_weights, ref.nested_samples["log_weights"].to_numpy())
    assert list(ours.priors) == list(ref.priors)
    for k in ref.priors:
        assert repr(ours.priors[k]) == repr(ref.priors[k]), k
