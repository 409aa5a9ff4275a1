"""dingo_generate_synthetic_asd_dataset --model model.h5 --num-samples N --out FILE.h5
   [--target-psd DET=FILE ...] [--target-kind psd|asd] [--welch-segments K [--segment-duration T]]
   [--plot FILE.png] [--seed S]

Draws N synthetic ASDs per detector from a fitted PSD model, optionally shifted toward target
PSDs (text files or ASD datasets), and writes them as an ASD dataset.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from dingo_gw.cli._common import ArgumentParser, SEED, ensure_parent, number, output_file, run_main
from dingo_gw.errors import ConfigError

#: --segment-duration is at most this many times the model's domain duration (memory ~ duration).
MAX_SEGMENTS = 16.0


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="dingo_generate_synthetic_asd_dataset", description=__doc__.split("\n\n")[1])
    p.add_argument("--model", required=True, help="PSD model file from dingo_fit_psd_model")
    p.add_argument("--num-samples", type=number(int, 1, 10**7), required=True, help="synthetic ASDs per detector")
    p.add_argument("--out", required=True, help="output ASD dataset (HDF5)")
    p.add_argument("--target-psd", action="append", default=[], metavar="DET=FILE",
                   help="shift the broadband toward this PSD (text file, or an ASD dataset .h5); repeatable")
    p.add_argument("--target-kind", choices=("psd", "asd"), default="psd", help="what text target files hold")
    p.add_argument("--welch-segments", type=number(int, 1, 10**6), default=None,
                   help="draw as K-segment Welch median estimates (default: smooth model PSDs)")
    p.add_argument("--segment-duration", type=number(float, 0.0, MAX_SEGMENTS * 4096.0, low_open=True), default=None,
                   help=f"Welch segment length [s] for --welch-segments (default: the domain duration; at most "
                        f"{MAX_SEGMENTS:g} times it)")
    p.add_argument("--plot", default=None, help="PNG overlaying the model's inputs and the synthetic bands")
    p.add_argument("--seed", type=SEED, default=None, help="random seed")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _targets(model, specs: list[str], kind: str) -> dict:
    from dingo_gw.noise.asd_dataset import load_asd_dataset
    from dingo_gw.noise.psd import read_psd_file

    out: dict = {}
    for spec in specs:
        det, sep, path = spec.partition("=")
        if not sep or not det or not path:
            raise ConfigError(f"--target-psd {spec!r}: expected DET=FILE")
        if det not in model.detectors:
            raise ConfigError(f"--target-psd {spec!r}: the model has no {det} (it has {', '.join(model.detectors)})")
        if path.endswith((".h5", ".hdf5")):
            ds = load_asd_dataset(path)
            ds.check_domain(model.domain)
            ds.check_detectors([det])
            for i in range(ds.num_asds(det)):
                out.setdefault(det, []).append(model.fit_target(
                    det, ds.psds(det)[i], f"{path}[{det}][{i}]", int(ds.welch_segments[det][i]),
                    float(ds.segment_durations[det][i])))
        else:
            psd = read_psd_file(path, model.domain, kind)
            out.setdefault(det, []).append(model.fit_target(det, psd, path))
    return out


@run_main
def main(argv=None):
    from dingo_gw.noise.forecast import load_psd_model, plot_asd_bands, write_synthetic_asd_dataset
    from dingo_gw.noise.asd_dataset import load_asd_dataset

    args = build_parser().parse_args(argv)
    model = load_psd_model(args.model)
    longest = MAX_SEGMENTS * model.domain.duration
    if args.segment_duration is not None and args.segment_duration > longest:
        raise ConfigError(f"--segment-duration must be in (0, {longest:g}] s ({MAX_SEGMENTS:g} times the model's "
                          f"{model.domain.duration:g} s domain), got {args.segment_duration:g}")
    targets = _targets(model, args.target_psd, args.target_kind)
    if targets:
        model = model.shifted(targets)
    with output_file(args.out) as out:
        write_synthetic_asd_dataset(model, out, args.num_samples, args.seed, args.welch_segments,
                                    args.segment_duration, progress=not args.quiet, source=Path(args.model).name)
    print(f"wrote {out}: {args.num_samples} synthetic ASDs for each of {', '.join(model.detectors)}"
          + (f" (shifted toward {', '.join(f'{d}: {len(t)}' for d, t in targets.items())} target PSD(s))" if targets else ""))
    if args.plot:
        png = ensure_parent(args.plot)
        synth = load_asd_dataset(out)
        real = {d: m.input_asds for d, m in model.detectors.items() if m.input_asds is not None}
        plot_asd_bands(model.domain, real, {d: synth.asds[d][:2000] for d in synth.detectors}, png,
                       title=f"synthetic ASDs from {Path(args.model).name} and the real ASDs it was fitted to")
        print(f"wrote {png}")
    return 0
