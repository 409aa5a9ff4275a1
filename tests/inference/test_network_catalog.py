"""Which shipped network analyses an event: the catalogue (data/networks/networks.json), the
selection by detectors with data and chirp-mass range, the out-of-range error, dingo_ls --networks."""

import json
from pathlib import Path

import pytest

from dingo_gw.cli.analyze import main as analyze_main
from dingo_gw.cli.ls import main as ls_main
from dingo_gw.errors import DataError, FileFormatError
from dingo_gw.events import get_event
from dingo_gw.inference.network_catalog import NetworkEntry, choose_network, load_catalog, select_network
from dingo_gw.nn import load_network
from dingo_gw.priors import build_prior

ROOT = Path(__file__).resolve().parents[2]

HEAVY = NetworkEntry("heavy", Path("heavy.pt"), ("H1", "L1"), (15.0, 60.0))
HEAVY_V = NetworkEntry("heavy_hlv", Path("hlv.pt"), ("H1", "L1", "V1"), (15.0, 60.0))
LOW = NetworkEntry("low", Path("low.pt"), ("H1", "L1"), (5.0, 15.0))
HIGH = NetworkEntry("high", Path("high.pt"), ("H1", "L1", "V1"), (60.0, 200.0))
FAMILY = [HEAVY, HEAVY_V, LOW, HIGH]


def test_catalogue_agrees_with_the_shipped_networks_metadata():
    entries = load_catalog([ROOT / "data"])
    assert [e.name for e in entries][0] == "default"
    for e in entries:
        assert e.path.is_file(), e.path
        assert e.path.stat().st_size <= 50e6, f"{e.path}: over 50 MB"  # each shipped network (issue 20)
        _, meta = load_network(e.path)
        prior = build_prior(dict(meta["prior"]))
        assert tuple(meta["detectors"]) == e.detectors
        assert (prior["chirp_mass"].minimum, prior["chirp_mass"].maximum) == e.chirp_mass


@pytest.mark.parametrize("detectors, chirp_mass, expected", [
    ({"H1", "L1", "V1"}, 27.0, "heavy_hlv"),   # GW170814-like: the three-detector network wins
    ({"H1", "L1"}, 27.0, "heavy"),             # no V1 data
    ({"H1", "L1", "V1"}, 9.7, "low"),          # GW151226-like: the only network whose range holds it
    ({"H1", "L1", "V1"}, 104.0, "high"),       # GW190521-like
    ({"H1", "L1"}, 15.0, "low"),               # on a shared edge: the narrower range
])
def test_selection_by_detectors_and_chirp_mass(detectors, chirp_mass, expected):
    assert select_network(FAMILY, detectors, chirp_mass).entry.name == expected


def test_selection_errors_name_the_problem_and_the_nearest_networks():
    with pytest.raises(DataError, match=r"chirp mass 300 Msun .*outside every shipped network's range; nearest: high"):
        select_network(FAMILY, {"H1", "L1", "V1"}, 300.0, "GWX")
    with pytest.raises(DataError, match=r"chirp mass 104 .*nearest: heavy \(H1\+L1"):
        select_network(FAMILY, {"H1", "L1"}, 104.0, "GWX")  # high needs V1
    with pytest.raises(DataError, match="no shipped network takes detectors H1 "):
        select_network(FAMILY, {"H1"}, 30.0)
    with pytest.raises(DataError, match="several networks use these detectors; give --chirp-mass"):
        select_network(FAMILY, {"H1", "L1"}, None)
    only = select_network([HEAVY], {"H1", "L1"}, None)
    assert only.entry is HEAVY and "range not checked" in only.reason


def test_events_pick_the_shipped_network_or_fail_with_the_nearest():
    def pick(event, network=None, chirp_mass=None):
        return choose_network(network, get_event(event), {}, chirp_mass, False)

    path, why = pick(event="GW150914")
    assert path == ROOT / "data" / "networks" / "default" / "network.pt"
    assert why["name"] == "default" and "31.2 Msun (catalogue estimate)" in why["reason"]
    path, why = pick(event="GW170814")  # V1 data shipped: the three-detector network
    assert path == ROOT / "data" / "networks" / "hlv" / "network.pt"
    assert why["name"] == "hlv" and why["detectors"] == ["H1", "L1", "V1"] and "not used" not in why["reason"]
    path, why = pick(event="GW190521")  # detector-frame chirp mass 104 Msun: the high-mass network
    assert path == ROOT / "data" / "networks" / "highmass" / "network.pt"
    assert why["name"] == "highmass" and "104 Msun (catalogue estimate) lies in 60-150" in why["reason"]
    _, why = pick(event="GW170104")  # H1+L1 only: the network that needs V1 is not a candidate
    assert why["name"] == "default"
    path, why = pick(event="GW151226")  # detector-frame chirp mass 9.7 Msun: the low-mass network (8 s)
    assert path == ROOT / "data" / "networks" / "lowmass" / "network.pt"
    assert why["name"] == "lowmass" and "9.7 Msun (catalogue estimate) lies in 8.5-15" in why["reason"]
    with pytest.raises(DataError, match=r"GW170817: detector-frame chirp mass 1.2 Msun \(catalogue estimate\) lies "
                                        r"outside every shipped network's range; nearest: lowmass"):
        pick(event="GW170817")  # a binary neutron star: no shipped network covers it
    _, why = pick(event="GW151226", chirp_mass=20.0)  # the user's estimate overrides the catalogue's
    assert why["name"] == "default" and "--chirp-mass" in why["reason"]
    path, why = pick(event="GW151226", network=str(path))  # --network: no selection
    assert why == {"path": str(path), "reason": "given with --network"}
    named, why = pick(event="GW150914", network="lowmass")  # --network NAME: that shipped network, no selection
    assert named == ROOT / "data" / "networks" / "lowmass" / "network.pt" and why["name"] == "lowmass"
    with pytest.raises(DataError, match="network file not found: nosuchnet"):
        pick(event="GW150914", network="nosuchnet")


def test_out_of_range_event_is_one_error_line_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as e:
        analyze_main(["--event", "GW170817", "--outdir", str(out), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code != 0 and len(err) == 1 and "outside every shipped network's range" in err[0]
    assert not out.exists() or not any(out.iterdir())


def test_malformed_catalogues_are_refused(tmp_path):
    folder = tmp_path / "networks"
    folder.mkdir()
    cases = {
        "not json {": "not a readable JSON network catalogue",
        json.dumps({"networks": []}): "at least one network",
        json.dumps({"networks": [{"name": "x", "path": "x.pt", "detectors": ["H1"]}]}): "lacks the key 'chirp_mass'",
        json.dumps({"networks": [{"name": "x", "path": "../../x.pt", "detectors": ["H1"], "chirp_mass": [1, 2]}]}):
            "must lie inside networks/",
        json.dumps({"networks": [{"name": "x", "path": "x.pt", "detectors": ["H1"], "chirp_mass": [5, 2]}]}):
            "0 < min < max",
    }
    for text, message in cases.items():
        (folder / "networks.json").write_text(text)
        with pytest.raises(FileFormatError, match=message):
            load_catalog([tmp_path])


def test_dingo_ls_lists_the_shipped_networks(capsys):
    with pytest.raises(SystemExit) as e:
        ls_main(["--networks"])
    out = capsys.readouterr().out.splitlines()
    assert e.value.code == 0
    assert out[0].split()[:2] == ["name", "detectors"]
    assert out[1].split()[:3] == ["default", "H1+L1", "15-60"]
    assert ["highmass", "H1+L1+V1", "60-150"] in [line.split()[:3] for line in out[1:]]
