"""dingo_analyze argument errors: one clear line, exit status 2, nothing written (no network needed)."""

import pytest

from dingo_gw.cli.analyze import build_parser, main


def _error(argv, capsys, tmp_path) -> str:
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as e:
        main(argv + ["--outdir", str(out), "--no-progress"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    assert not out.exists() or not any(out.iterdir())
    return err[0]


def test_unknown_event(capsys, tmp_path):
    line = _error(["--event", "GW123456"], capsys, tmp_path)
    assert "unknown event 'GW123456'" in line and "GW150914" in line


def test_data_options_must_be_consistent(capsys, tmp_path):
    assert "exactly one of --event" in _error([], capsys, tmp_path)
    assert "exactly one of --event" in _error(["--event", "GW150914", "--injection", "prior"], capsys, tmp_path)
    assert "--strain needs --gps" in _error(["--strain", "H1=x.hdf5"], capsys, tmp_path)
    assert "expects DET=FILE" in _error(["--gps", "1126259462.4", "--strain", "H1"], capsys, tmp_path)
    assert "given twice" in _error(["--gps", "1", "--strain", "H1=a", "--strain", "H1=b"], capsys, tmp_path)
    line = _error(["--gps", "1126259462.4", "--strain", "X1=a.hdf5"], capsys, tmp_path)
    assert "unknown detector 'X1'" in line
    assert "--num-samples: expected an integer in [1, 10000000], got '0'" in _error(
        ["--event", "GW150914", "--num-samples", "0"], capsys, tmp_path)


def test_parser_defaults():
    args = build_parser().parse_args(["--event", "GW150914"])
    assert (args.num_samples, args.gibbs_iterations, args.workers, args.seed) == (20000, 30, 2, 0)
