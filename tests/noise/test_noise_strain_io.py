"""Strain I/O, data finding and the event catalogue (offline, real GWOSC files in data/)."""

import gzip
import shutil

import h5py
import numpy as np
import pytest

from dingo_gw.errors import DataError
from dingo_gw.events import get_event, list_events
from dingo_gw.io.datafind import ENV_VAR, find_data_file, find_strain_file, search_dirs
from dingo_gw.io.strain import Strain, fetch_open_data, join_strains, read_strain

H1_HDF5 = "H-H1_LOSC_4_V2-1126259446-32.hdf5"
L1_HDF5 = "L-L1_LOSC_4_V2-1126259446-32.hdf5"
H1_TXT = "H-H1_GWOSC_4KHZ_R1-1186741846-32.txt"


def one_line(err) -> str:
    msg = str(err.value)
    assert "\n" not in msg and msg
    return msg


def test_hdf5_reader_matches_gwpy(data_dir):
    from gwpy.timeseries import TimeSeries

    s = read_strain(data_dir / H1_HDF5)
    ref = TimeSeries.read(str(data_dir / H1_HDF5), format="hdf5.gwosc")
    assert s.detector == "H1" and s.t0 == ref.t0.value == 1126259446.0
    assert s.sample_rate == ref.sample_rate.value == 4096.0
    assert np.array_equal(s.data, ref.value) and s.data.dtype == np.float64
    assert s.duration == 32.0 and s.times[1] - s.times[0] == 1 / 4096
    c = s.crop(1126259450.0, 1126259452.5)
    assert c.t0 == 1126259450.0 and c.num_samples == int(2.5 * 4096)
    assert np.array_equal(c.data, ref.crop(1126259450.0, 1126259452.5).value)
    # a span keeps only part of the file
    assert np.array_equal(read_strain(data_dir / H1_HDF5, span=(1126259450.0, 1126259452.5)).data, c.data)


def test_ascii_reader_with_and_without_header(data_dir, tmp_path):
    s = read_strain(data_dir / H1_TXT, detector="H1")
    raw = np.loadtxt(data_dir / H1_TXT)
    assert s.t0 == 1186741846.0 and s.sample_rate == 4096.0 and np.array_equal(s.data, raw)
    # header-less copy (as the GW190521 files): GPS start and detector from the file name
    bare = tmp_path / H1_TXT
    np.savetxt(bare, raw)
    b = read_strain(bare)
    assert (b.detector, b.t0, b.sample_rate) == ("H1", s.t0, 4096.0) and np.array_equal(b.data, raw)
    # gzipped, as GWOSC serves them
    gz = tmp_path / (H1_TXT + ".gz")
    with open(data_dir / H1_TXT, "rb") as fi, gzip.open(gz, "wb") as fo:
        shutil.copyfileobj(fi, fo)
    assert np.array_equal(read_strain(gz).data, raw)
    # without header and without a GWOSC name the GPS start is unknown
    anon = tmp_path / "strain.txt"
    np.savetxt(anon, raw[:100])
    with pytest.raises(DataError, match="GPS start is unknown") as e:
        read_strain(anon, detector="H1")
    one_line(e)


def test_frame_file_roundtrip_through_gwpy(data_dir, tmp_path):
    from gwpy.timeseries import TimeSeries

    ref = TimeSeries.read(str(data_dir / H1_HDF5), format="hdf5.gwosc")
    ref.name = ref.channel = "H1:GWOSC-4KHZ_R1_STRAIN"
    gwf = tmp_path / "H-H1_GWOSC_4KHZ_R1-1126259446-32.gwf"
    ref.write(str(gwf))
    s = read_strain(gwf)
    assert (s.detector, s.t0, s.sample_rate) == ("H1", 1126259446.0, 4096.0)
    assert np.allclose(s.data, ref.value, rtol=1e-12, atol=0)
    with pytest.raises(DataError, match="holds H1 strain, but L1"):
        read_strain(gwf, detector="L1")


def _copy_h5(src, dst, edit):
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        edit(f)
    return dst


def test_bad_strain_files_give_one_clear_error(data_dir, tmp_path):
    src = data_dir / H1_HDF5
    cases = []

    def nan(f):
        d = f["strain/Strain"]
        x = d[()]
        x[5000] = np.nan
        d[...] = x

    (tmp_path / "nan").mkdir()
    cases.append((_copy_h5(src, tmp_path / "nan" / H1_HDF5, nan), "1 NaN/inf samples"))

    def short(f):
        x = f["strain/Strain"][()][:-4096]
        attrs = dict(f["strain/Strain"].attrs)
        del f["strain/Strain"]
        f.create_dataset("strain/Strain", data=x)
        f["strain/Strain"].attrs.update(attrs)

    (tmp_path / "short").mkdir()
    cases.append((_copy_h5(src, tmp_path / "short" / H1_HDF5, short), "truncated file or missing samples"))
    # file truncated on disk
    trunc = tmp_path / "trunc" / H1_HDF5
    trunc.parent.mkdir()
    trunc.write_bytes(src.read_bytes()[:300_000])
    cases.append((trunc, "not a valid HDF5 file or truncated"))
    # file name and header disagree on the GPS start
    renamed = tmp_path / "H-H1_LOSC_4_V2-1126259447-32.hdf5"
    shutil.copy(src, renamed)
    cases.append((renamed, "file name says 1126259447"))
    # observatory letter and detector disagree
    wrongobs = tmp_path / "L-H1_LOSC_4_V2-1126259446-32.hdf5"
    shutil.copy(src, wrongobs)
    cases.append((wrongobs, "observatory letter"))
    # unknown detector in the name
    badname = tmp_path / "X-X1_LOSC_4_V2-1126259446-32.hdf5"
    shutil.copy(src, badname)
    cases.append((badname, "unknown detector"))
    # ASCII: a corrupt line, and missing samples
    lines = (data_dir / H1_TXT).read_text().splitlines()
    (tmp_path / "corrupt").mkdir()
    corrupt = tmp_path / "corrupt" / H1_TXT
    corrupt.write_text("\n".join(lines[:1000] + ["1.0e-21 garbage"] + lines[1001:]) + "\n")
    cases.append((corrupt, "corrupt ASCII strain"))
    (tmp_path / "cut").mkdir()
    cut = tmp_path / "cut" / H1_TXT
    cut.write_text("\n".join(lines[:-10]) + "\n")
    cases.append((cut, "truncated file or missing samples"))
    # two-column (time, strain) file with a jump in the time stamps
    t = 1186741846 + np.arange(4096) / 4096.0
    t[2000:] += 0.5
    gap = tmp_path / "gap.txt"
    np.savetxt(gap, np.column_stack([t, np.zeros(4096)]), header="strain for H1")
    cases.append((gap, "not uniformly spaced"))
    cases.append((tmp_path / "missing.hdf5", "strain file not found"))
    for path, message in cases:
        with pytest.raises(DataError, match=message) as e:
            read_strain(path)
        one_line(e)
    with pytest.raises(DataError, match="holds L1 strain, but H1 was requested") as e:
        read_strain(data_dir / L1_HDF5, detector="H1")
    one_line(e)
    with pytest.raises(DataError, match="unknown requested detector 'G1'"):
        read_strain(data_dir / L1_HDF5, detector="G1")


def test_strain_object_refuses_nans_and_joins_only_contiguous_pieces(data_dir):
    s = read_strain(data_dir / H1_HDF5)
    a, b = s.crop(s.t0, s.t0 + 10), s.crop(s.t0 + 10, s.t0 + 20)
    assert np.array_equal(join_strains([b, a]).data, s.crop(s.t0, s.t0 + 20).data)
    with pytest.raises(DataError, match="gap of 1 s") as e:
        join_strains([a, s.crop(s.t0 + 11, s.t0 + 20)])
    one_line(e)
    with pytest.raises(DataError, match="cannot join strain of H1 and L1"):
        join_strains([a, Strain("L1", b.t0, 4096.0, b.data)])
    with pytest.raises(DataError, match="NaN/inf samples"):
        Strain("H1", 0.0, 4096.0, np.array([0.0, np.nan]))
    with pytest.raises(DataError, match="unknown detector 'H2'"):
        Strain("H2", 0.0, 4096.0, np.zeros(4))
    with pytest.raises(DataError, match="not inside the data"):
        s.crop(s.t0 - 1, s.t0 + 1)


def test_fetch_open_data_fails_clearly_without_network():
    # a reserved, never-resolving host stands in for "no network", also on CI machines online
    with pytest.raises(DataError, match="unreachable") as e:
        fetch_open_data("H1", 1126259446, 1126259450, host="https://gwosc.invalid", timeout=2)
    one_line(e)


def test_datafind_search_order_and_errors(tmp_path, monkeypatch, data_dir):
    first, env = tmp_path / "first", tmp_path / "env"
    first.mkdir(), env.mkdir()
    name = "H-H1_GWOSC_4KHZ_R1-1126259447-32.txt"
    (env / name).write_text("")
    monkeypatch.setenv(ENV_VAR, str(env))
    assert search_dirs(first) == [first, env, data_dir.resolve()]
    assert find_strain_file("H1", 1126259462.4, first) == env / name  # env before data/
    (first / name).write_text("")
    assert find_strain_file("H1", 1126259462.4, first) == first / name  # --data-dir first
    monkeypatch.delenv(ENV_VAR)
    assert find_strain_file("H1", 1126259462.4) == data_dir.resolve() / H1_HDF5
    with pytest.raises(DataError, match=r"no V1 strain file covering GPS 1126259462.4: looked for V-V1_\*") as e:
        find_strain_file("V1", 1126259462.4, first)
    assert str(first) in one_line(e)
    with pytest.raises(DataError, match="data file nothing.txt not found; looked in"):
        find_data_file("nothing.txt", first)


def test_event_catalogue():
    ev = get_event("gw150914")
    assert ev.gps == 1126259462.4 and ev.detectors == ("H1", "L1")
    assert get_event("LVT151012").name == "GW151012"
    gwtc1 = ["GW150914", "GW151012", "GW151226", "GW170104", "GW170608", "GW170729", "GW170809",
             "GW170814", "GW170817", "GW170818", "GW170823"]
    assert set(gwtc1) <= set(list_events())
    assert get_event("GW170823").detectors == ("H1", "L1") and "V1" in get_event("GW170729").detectors
    with pytest.raises(DataError, match="unknown event 'GW999999'; known events: GW150914, ") as e:
        get_event("GW999999")
    one_line(e)
    # shipped files exist, belong to the right detector and cover the event time
    for name in ("GW150914", "GW151012", "GW151226", "GW170104", "GW170814"):
        ev = get_event(name)
        for det, path in ev.available().items():
            assert path is not None, (name, det)
            s = read_strain(path, det)
            assert s.t0 + 6 < ev.gps < s.t_end - 2
    with pytest.raises(DataError, match="observed by H1, L1, not V1"):
        get_event("GW150914").strain_path("V1")
    assert {r.path for _, r in get_event("GW150914").psd_paths("H1")} == {
        "psd/GWTC-1/GWTC1_GW150914_PSDs.dat", "psd/lfi-gw_GW150914/PSD_H1.txt"}
