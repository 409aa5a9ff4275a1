"""Side-by-side benchmark against the reference DINGO package (dingo-gw, installed in its own venv).

    python scripts/bench_vs_dingo.py [--dingo-python /work/venv_dingo/bin/python]
        [--num-waveforms 5000] [--workers 1] [--epochs 2] [--batch-size 256] [--threads 1]
        [--skip-bank | --skip-train] [--outdir DIR]

(a) Bank generation: each package's ``dingo_generate_dataset`` console script, as a subprocess, on
    the same settings: IMRPhenomPv2, f_ref 20 Hz, the same frequency domain, the same bilby
    intrinsic prior (dingo_gw.priors.DEFAULT_INTRINSIC_PRIOR, waveforms at 100 Mpc), the same
    number of waveforms and worker processes, no SVD compression. Each is run twice, with n0 =
    N/10 and N waveforms; the headline figure is the marginal rate (N - n0) / (T_N - T_n0), which
    removes the fixed costs (interpreter start, imports, process pool, file set-up); the wall time
    of the N run is printed too.
(b) Training: each package's ``dingo_train`` for --epochs epochs of plain NPE (no GNPE) on its own
    bank from (a), with the same ASDs (the aLIGO design curve times 20 random factors per
    detector), detectors, extrinsic prior, 14 inference parameters, batch size, optimizer, number
    of torch threads (OMP_NUM_THREADS and local settings) and no data-loader workers, and the
    same network sizes: embedding (SVD projection of n_basis vectors per detector, residual blocks
    of --embedding-dims, layer norm, output --context-dim) and a rational-quadratic coupling flow
    (--transforms, --bins, width --flow-width; dingo's residual conditioner with one block ~ our
    MLP with three hidden layers; parameter counts are printed). Samples/s is the time of the
    training loop of each epoch (validation and set-up excluded): ours from history.csv, dingo's
    the sum of the per-batch "Time Dataloader" + "Time Network" it prints.

Exit code 2 with one line when dingo-gw is not installed at --dingo-python. Set-up of the
reference venv: docs/performance.md. Figures vary with machine load: run on an idle machine.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import (  # noqa: E402
    BenchError, console_script, load_average, run_cli, thread_env, timed_run, write_yaml,
)

INFERENCE_PARAMETERS = ["chirp_mass", "mass_ratio", "a_1", "a_2", "tilt_1", "tilt_2", "phi_12", "phi_jl",
                        "theta_jn", "luminosity_distance", "geocent_time", "ra", "dec", "psi"]
REF_TIME = 1126259462.4

# dingo-gw imports only torchvision.transforms.Compose from torchvision. The torchvision wheels on
# PyPI are linked against CUDA builds of torch, so with a CPU-only torch their C extension fails
# to load and ``import torchvision`` raises. Then this stand-in (same behaviour: apply the
# transforms in order) is put first on the reference interpreter's PYTHONPATH.
SHIM_INIT = "from . import transforms  # stand-in: see scripts/bench_vs_dingo.py\n"
SHIM_TRANSFORMS = '''class Compose:
    """Apply the transforms in order (what torchvision.transforms.Compose does)."""

    def __init__(self, transforms):
        self.transforms = transforms

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x
'''

DINGO_ASD_WRITER = """
import sys
import numpy as np
from dingo.gw.noise.asd_dataset import ASDDataset
arrays = np.load(sys.argv[1])
f_min, f_max, delta_f = (float(x) for x in sys.argv[3:6])
asds = {k: arrays[k] for k in arrays.files}
ds = ASDDataset(dictionary={
    "settings": {"domain_dict": {"type": "FrequencyDomain", "f_min": f_min, "f_max": f_max, "delta_f": delta_f}},
    "asds": asds, "gps_times": {k: np.zeros(len(v)) for k, v in asds.items()}})
ds.to_file(sys.argv[2])
"""


def int_list(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dingo-python", default=os.environ.get("DINGO_PYTHON", "/work/venv_dingo/bin/python"),
                   help="python of the venv with dingo-gw (default $DINGO_PYTHON or /work/venv_dingo/bin/python)")
    p.add_argument("--num-waveforms", type=int, default=5000)
    p.add_argument("--workers", type=int, default=1, help="waveform processes of both generators")
    p.add_argument("--f-min", type=float, default=20.0)
    p.add_argument("--f-max", type=float, default=512.0)
    p.add_argument("--delta-f", type=float, default=0.25)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--threads", type=int, default=1, help="torch / BLAS threads of both trainers")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--n-basis", type=int, default=64, help="SVD vectors per detector of the embedding's first layer")
    p.add_argument("--embedding-dims", type=int_list, default=[512, 256, 128], help="residual blocks, e.g. 512,256,128")
    p.add_argument("--context-dim", type=int, default=128)
    p.add_argument("--transforms", type=int, default=10, help="coupling transforms of the flow")
    p.add_argument("--bins", type=int, default=8)
    p.add_argument("--flow-width", type=int, default=256)
    p.add_argument("--svd-samples", type=int, default=1000, help="signals for the embedding's SVD initialisation")
    p.add_argument("--skip-bank", action="store_true", help="only the training benchmark (still makes the banks)")
    p.add_argument("--skip-train", action="store_true", help="only the bank-generation benchmark")
    p.add_argument("--outdir", help="keep all files and logs here (default: a temporary folder)")
    args = p.parse_args(argv)
    if args.num_waveforms < 20:
        p.error("--num-waveforms must be >= 20")
    if min(args.workers, args.epochs, args.batch_size, args.threads) < 1:
        p.error("--workers, --epochs, --batch-size and --threads must be >= 1")
    if args.skip_bank and args.skip_train:
        p.error("--skip-bank and --skip-train together leave nothing to do")
    return args


# -- the reference installation -----------------------------------------------------------------
def find_dingo(python: str, folder: Path) -> tuple[str, dict]:
    """(dingo-gw version, environment for its processes); BenchError(code 2) if it is not there."""
    if not Path(python).exists():
        raise BenchError(f"dingo-gw reference not found: no python at {python} (set --dingo-python or "
                         f"DINGO_PYTHON; set-up in docs/performance.md)", code=2)
    env = thread_env(1)
    env.pop("PYTHONPATH", None)
    # cwd: a folder without our own dingo_gw metadata, which importlib.metadata would find first
    r = timed_run([python, "-c", "import dingo; print(getattr(dingo, '__version__', '?'))"], env=env, cwd=folder)
    if r.returncode != 0:
        raise BenchError(f"dingo-gw is not installed for {python} (set-up in docs/performance.md)", code=2)
    version = r.stdout.strip().splitlines()[-1]
    if timed_run([python, "-c", "import torchvision.transforms"], env=env, cwd=folder).returncode != 0:
        shim = folder / "torchvision_shim" / "torchvision"
        shim.mkdir(parents=True, exist_ok=True)
        (shim / "__init__.py").write_text(SHIM_INIT)
        (shim / "transforms.py").write_text(SHIM_TRANSFORMS)
        env["PYTHONPATH"] = str(shim.parent)
        print("note: torchvision does not import in the reference venv (CUDA-linked wheel, CPU torch); "
              "using a stand-in for torchvision.transforms.Compose, the only part dingo-gw uses")
    r = timed_run([python, "-c", "import dingo.gw.dataset.generate_dataset, dingo.gw.training.train_pipeline"], env=env,
                  cwd=folder)
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["?"])[-1]
        raise BenchError(f"dingo-gw {version} at {python} does not import: {last}", code=2)
    return version, env


def dingo_command(python: str, script: str, module: str, func: str) -> list[str]:
    """dingo-gw's console script ``script`` (or the same entry point through ``python -c``)."""
    path = console_script(script, python)
    if path is not None:
        return [str(path)]
    return [python, "-c", f"from {module} import {func}; {func}()"]


def ours_command(script: str, module: str) -> list[str]:
    path = console_script(script, sys.executable)
    if path is not None:
        return [str(path)]
    return [sys.executable, "-c", f"import sys; from {module} import main; sys.exit(main())"]


# -- (a) banks ----------------------------------------------------------------------------------
def bank_settings(args, n: int) -> tuple[dict, dict]:
    """(our bank config, dingo's waveform dataset settings) for ``n`` waveforms."""
    from dingo_gw.priors import DEFAULT_INTRINSIC_PRIOR, REFERENCE_EXTRINSIC

    domain = {"f_min": args.f_min, "f_max": args.f_max, "delta_f": args.delta_f}
    ours = {"domain": domain, "waveform": {"approximant": "IMRPhenomPv2", "f_ref": 20.0},
            "prior": dict(DEFAULT_INTRINSIC_PRIOR), "num_samples": n, "seed": 1, "chunk_size": 64}
    theirs = {"domain": {"type": "FrequencyDomain", **domain},
              "waveform_generator": {"approximant": "IMRPhenomPv2", "f_ref": 20.0},
              "intrinsic_prior": {**DEFAULT_INTRINSIC_PRIOR, **{k: float(v) for k, v in REFERENCE_EXTRINSIC.items()}},
              "num_samples": n}
    return ours, theirs


def generate_banks(args, folder: Path, dingo_python: str, dingo_env: dict) -> dict:
    """Run both generators for n0 and N waveforms; returns {name: {n: wall}} and the bank paths."""
    n_full = args.num_waveforms
    n0 = max(10, n_full // 10)
    ours_cmd = ours_command("dingo_generate_dataset", "dingo_gw.cli.generate_dataset")
    theirs_cmd = dingo_command(dingo_python, "dingo_generate_dataset", "dingo.gw.dataset.generate_dataset", "main")
    walls = {"dingo_gw": {}, "dingo-gw": {}}
    paths = {}
    for n in (n0, n_full):  # interleaved: both codes see the same machine state
        ours_cfg, theirs_cfg = bank_settings(args, n)
        c_ours = write_yaml(folder / f"bank_ours_{n}.yaml", ours_cfg)
        c_theirs = write_yaml(folder / f"bank_dingo_{n}.yaml", theirs_cfg)
        out_ours, out_theirs = folder / f"bank_ours_{n}.h5", folder / f"bank_dingo_{n}.hdf5"
        r = timed_run(ours_cmd + ["--config", c_ours, "--out", out_ours, "--workers", args.workers, "--no-progress"],
                      env=thread_env(1), log=folder / f"log_bank_ours_{n}.txt")
        walls["dingo_gw"][n] = r.check(f"dingo_gw bank generation ({n} waveforms)").wall
        r = timed_run(theirs_cmd + ["--settings_file", c_theirs, "--out_file", out_theirs,
                                    "--num_processes", args.workers],
                      env=dingo_env, cwd=folder, log=folder / f"log_bank_dingo_{n}.txt")
        walls["dingo-gw"][n] = r.check(f"dingo-gw bank generation ({n} waveforms)").wall
        paths = {"dingo_gw": out_ours, "dingo-gw": out_theirs}
    return {"n0": n0, "n": n_full, "walls": walls, "paths": paths}


def report_banks(res: dict, args) -> None:
    n0, n = res["n0"], res["n"]
    print(f"\n(a) bank generation: IMRPhenomPv2, {args.f_min:g}-{args.f_max:g} Hz, delta_f {args.delta_f:g} Hz, "
          f"default intrinsic prior, no compression, {args.workers} worker process(es)")
    print(f"{'':12s} {'wall, %d wf' % n:>14s} {'wall, %d wf' % n0:>14s} {'marginal wf/s':>14s} {'wf/s incl. start':>17s}")
    rates = {}
    for name in ("dingo-gw", "dingo_gw"):
        w = res["walls"][name]
        # fixed costs vary by ~0.1-0.5 s between runs: below that the difference means nothing
        marginal = (n - n0) / (w[n] - w[n0]) if w[n] - w[n0] > 0.5 else float("nan")
        rates[name] = (marginal, n / w[n])
        shown = f"{marginal:14.0f}" if marginal == marginal else f"{'n/a':>14s}"
        print(f"{name:12s} {w[n]:13.2f}s {w[n0]:13.2f}s {shown} {n / w[n]:17.0f}")
    ratio = rates["dingo_gw"][0] / rates["dingo-gw"][0]
    print(f"ratio dingo_gw / dingo-gw: marginal "
          f"{'%.2fx' % ratio if ratio == ratio else 'n/a (too few waveforms: raise --num-waveforms)'}, "
          f"including start-up {rates['dingo_gw'][1] / rates['dingo-gw'][1]:.2f}x")


# -- (b) training -------------------------------------------------------------------------------
def training_asds(args, folder: Path, dingo_python: str, dingo_env: dict) -> tuple[Path, Path]:
    """The same 20 ASDs per detector in both formats."""
    from dingo_gw.design_curves import design_asd
    from dingo_gw.domain import FrequencyDomain
    from dingo_gw.noise.asd_dataset import ASDDataset, save_asd_dataset

    domain = FrequencyDomain(args.f_min, args.f_max, args.delta_f)
    base = design_asd("aLIGOZeroDetHighPower", domain.frequencies, fill_below=domain.f_min)
    rng = np.random.default_rng(0)
    asds = {d: base[None] * rng.uniform(0.8, 1.5, (20, 1)) for d in ("H1", "L1")}
    ours = save_asd_dataset(ASDDataset(domain, asds=asds, gps_times={}, sources={}), folder / "asd_ours.h5")
    npz = folder / "asds.npz"
    np.savez(npz, **asds)
    theirs = folder / "asd_dingo.hdf5"
    timed_run([dingo_python, "-c", DINGO_ASD_WRITER, npz, theirs, args.f_min, args.f_max, args.delta_f],
              env=dingo_env, cwd=folder, log=folder / "log_asd_dingo.txt").check("writing dingo-gw's ASD dataset")
    return ours, theirs


def train_settings(args, banks: dict, asd_ours: Path, asd_theirs: Path, folder: Path) -> tuple[dict, dict]:
    from dingo_gw.priors import DEFAULT_EXTRINSIC_PRIOR

    n_val = max(10, args.svd_samples // 5)
    ours = {
        "data": {"bank": str(banks["dingo_gw"]), "asd_dataset": str(asd_ours), "detectors": ["H1", "L1"],
                 "ref_time": REF_TIME, "extrinsic_prior": dict(DEFAULT_EXTRINSIC_PRIOR),
                 "inference_parameters": INFERENCE_PARAMETERS, "window_roll_off": 0.4, "validation_fraction": 0.05,
                 "standardization_samples": 10000},
        "model": {"type": "npe",
                  "embedding": {"n_basis": args.n_basis, "hidden_dims": args.embedding_dims,
                                "output_dim": args.context_dim, "activation": "elu", "layer_norm": True},
                  "flow": {"kind": "coupling", "transforms": args.transforms, "bins": args.bins,
                           "hidden_features": [args.flow_width] * 3},
                  "gnpe": None},
        "training": {"svd_samples": args.svd_samples,
                     "stages": [{"epochs": args.epochs, "batch_size": args.batch_size, "freeze_projection": False,
                                 "optimizer": {"name": "adam", "lr": args.lr}, "scheduler": {"name": "cosine"}}]},
        "local": {"device": "cpu", "num_threads": args.threads, "workers": 0, "progress": False},
        "seed": 0,
        "output_dir": str(folder / "train_ours"),
    }
    theirs = {
        "data": {"waveform_dataset_path": str(banks["dingo-gw"]), "train_fraction": 0.95,
                 "window": {"type": "tukey", "f_s": 2 * args.f_max, "T": 1.0 / args.delta_f, "roll_off": 0.4},
                 "detectors": ["H1", "L1"], "extrinsic_prior": dict(DEFAULT_EXTRINSIC_PRIOR), "ref_time": REF_TIME,
                 "inference_parameters": INFERENCE_PARAMETERS},
        "model": {"posterior_model_type": "normalizing_flow",
                  "posterior_kwargs": {"num_flow_steps": args.transforms,
                                       "base_transform_kwargs": {"hidden_dim": args.flow_width,
                                                                 "num_transform_blocks": 1, "activation": "elu",
                                                                 "dropout_probability": 0.0, "norm": None,
                                                                 "num_bins": args.bins,
                                                                 "base_transform_type": "rq-coupling"}},
                  "embedding_kwargs": {"output_dim": args.context_dim, "hidden_dims": args.embedding_dims,
                                       "activation": "elu", "dropout": 0.0, "norm": "LayerNorm",
                                       "svd": {"num_training_samples": args.svd_samples,
                                               "num_validation_samples": n_val, "size": args.n_basis}}},
        "training": {"stage_0": {"epochs": args.epochs, "asd_dataset_path": str(asd_theirs), "freeze_rb_layer": False,
                                 "optimizer": {"type": "adam", "lr": args.lr},
                                 "scheduler": {"type": "cosine", "T_max": args.epochs},
                                 "batch_size": args.batch_size}},
        "local": {"device": "cpu", "num_workers": 0,
                  "runtime_limits": {"max_time_per_run": 1e9, "max_epochs_per_run": args.epochs},
                  "checkpoint_epochs": 10 ** 6},
    }
    return ours, theirs


DINGO_BATCH = re.compile(r"Train Epoch: (\d+) \[(\d+)/(\d+).*?Time Dataloader: ([\d.]+) \(.*?Time Network: ([\d.]+) \(")


def dingo_epochs(stdout: str) -> list[tuple[int, float]]:
    """[(samples, seconds)] per epoch from dingo-gw's per-batch lines."""
    epochs: dict[int, list] = {}
    for m in DINGO_BATCH.finditer(stdout):
        e, done = int(m.group(1)), int(m.group(2))
        rec = epochs.setdefault(e, [0, 0.0])
        rec[0] = done
        rec[1] += float(m.group(4)) + float(m.group(5))
    return [tuple(epochs[e]) for e in sorted(epochs)]


def our_epochs(folder: Path) -> list[tuple[int, float]]:
    rows = list(csv.DictReader((folder / "history.csv").open()))
    return [(round(float(r["samples_per_s"]) * float(r["epoch_time_s"])), float(r["epoch_time_s"])) for r in rows]


def our_parameter_count(folder: Path) -> int:
    import torch

    d = torch.load(folder / "network.pt", map_location="cpu", weights_only=True)
    return int(sum(v.numel() for v in d["state_dict"].values()))


def run_training(args, folder: Path, banks: dict, dingo_python: str, dingo_env: dict) -> dict:
    asd_ours, asd_theirs = training_asds(args, folder, dingo_python, dingo_env)
    ours_cfg, theirs_cfg = train_settings(args, banks, asd_ours, asd_theirs, folder)
    c_ours = write_yaml(folder / "train_ours.yaml", ours_cfg)
    c_theirs = write_yaml(folder / "train_dingo.yaml", theirs_cfg)
    env = {**dingo_env, **{k: v for k, v in thread_env(args.threads).items() if k.endswith("_NUM_THREADS")}}
    r_theirs = timed_run(dingo_command(dingo_python, "dingo_train", "dingo.gw.training.train_pipeline", "train_local")
                         + ["--settings_file", c_theirs, "--train_dir", folder / "train_dingo"],
                         env=env, cwd=folder, log=folder / "log_train_dingo.txt").check("dingo-gw training")
    r_ours = timed_run(ours_command("dingo_train", "dingo_gw.cli.train") + [c_ours, "--no-progress"],
                       env=thread_env(args.threads), log=folder / "log_train_ours.txt").check("dingo_gw training")
    m = re.search(r"Learnable parameters: (\d+)", r_theirs.stdout)
    fixed = re.search(r"Fixed parameters: (\d+)", r_theirs.stdout)
    theirs_params = (int(m.group(1)) + (int(fixed.group(1)) if fixed else 0)) if m else None
    out = {"dingo-gw": {"epochs": dingo_epochs(r_theirs.stdout), "wall": r_theirs.wall, "params": theirs_params},
           "dingo_gw": {"epochs": our_epochs(folder / "train_ours"), "wall": r_ours.wall,
                        "params": our_parameter_count(folder / "train_ours")}}
    if len(out["dingo-gw"]["epochs"]) != args.epochs:
        raise BenchError(f"could not read {args.epochs} epochs of timings from dingo-gw's output "
                         f"({folder / 'log_train_dingo.txt'})")
    return out


def report_training(res: dict, args) -> None:
    print(f"\n(b) training: NPE without GNPE, batch {args.batch_size}, {args.threads} torch thread(s), "
          f"no loader workers, {args.epochs} epoch(s) on each code's bank of {args.num_waveforms} waveforms")
    print(f"embedding: {args.n_basis} SVD vectors/detector, residual blocks {args.embedding_dims}, context "
          f"{args.context_dim}; flow: {args.transforms} RQ coupling transforms, {args.bins} bins, width {args.flow_width}")
    head = " ".join(f"{'ep. %d samples/s' % (i + 1):>16s}" for i in range(args.epochs))
    print(f"{'':12s} {'parameters':>11s} {head} {'wall incl. set-up':>18s}")
    for name in ("dingo-gw", "dingo_gw"):
        r = res[name]
        rates = " ".join(f"{s / t:16.0f}" for s, t in r["epochs"])
        params = f"{r['params'] / 1e6:10.2f}M" if r["params"] else f"{'?':>11s}"
        print(f"{name:12s} {params} {rates} {r['wall']:17.1f}s")
    last = {name: res[name]["epochs"][-1] for name in res}
    ratio = (last["dingo_gw"][0] / last["dingo_gw"][1]) / (last["dingo-gw"][0] / last["dingo-gw"][1])
    print(f"ratio dingo_gw / dingo-gw, samples/s of the last epoch: {ratio:.2f}x; "
          f"ratio of wall times incl. set-up (dingo-gw / dingo_gw): {res['dingo-gw']['wall'] / res['dingo_gw']['wall']:.2f}x")


def main(argv=None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_vs_dingo_") as tmp:
        folder = Path(args.outdir) if args.outdir else Path(tmp)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise BenchError(f"cannot create --outdir {folder}: {e.strerror or e}") from None
        version, dingo_env = find_dingo(args.dingo_python, folder)
        import torch

        print(f"dingo-gw {version} ({args.dingo_python}) vs dingo_gw ({sys.executable}); torch {torch.__version__} "
              f"here; load average {load_average()} (2 cores; other jobs may share them); files in {folder}")
        banks = generate_banks(args, folder, args.dingo_python, dingo_env)
        if not args.skip_bank:
            report_banks(banks, args)
        if not args.skip_train:
            report_training(run_training(args, folder, banks["paths"], args.dingo_python, dingo_env), args)
        if not args.outdir:
            print("(temporary files removed; use --outdir to keep configs and logs)")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
