"""dingo_fit_psd_model --asd-dataset FILE --out model.h5 [--config psd_model.yaml] [--plot [PNG]]

Fits every ASD of an ASD dataset with the parametric PSD model (spline broadband + Lorentzian
lines), learns the per-detector parameter distribution and writes the model (HDF5).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from dingo_gw.cli._common import ArgumentParser, SEED, ensure_parent, output_file, run_main


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="dingo_fit_psd_model", description=__doc__.split("\n\n")[1])
    p.add_argument("--asd-dataset", required=True, help="input ASD dataset (HDF5)")
    p.add_argument("--out", required=True, help="output model file (HDF5)")
    p.add_argument("--config", default=None, help="YAML model settings (PsdModelConfig); defaults if omitted")
    p.add_argument("--plot", nargs="?", const="", default=None,
                   help="write a PNG of the inputs, their fits and synthetic bands (default: <out>.png)")
    p.add_argument("--seed", type=SEED, default=0, help="seed of the synthetic draws in the plot")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


@run_main
def main(argv=None):
    from dingo_gw.config import load_config
    from dingo_gw.noise.asd_dataset import load_asd_dataset
    from dingo_gw.noise.config import PsdModelConfig
    from dingo_gw.noise.forecast import evaluate_fit, fit_psd_model, plot_asd_bands, save_psd_model

    args = build_parser().parse_args(argv)
    config = load_config(args.config, PsdModelConfig) if args.config else PsdModelConfig()
    dataset = load_asd_dataset(args.asd_dataset)
    with output_file(args.out) as out:
        model = fit_psd_model(dataset, config, progress=not args.quiet)
        model.metadata["asd_dataset"] = str(args.asd_dataset)
        save_psd_model(model, out)
    for det, m in model.detectors.items():
        devs = np.array([f.deviation for f in m.fits])
        excess = devs - np.array([f.noise_floor for f in m.fits])
        print(f"{det}: {len(m.fits)} PSDs, {len(m.clusters)} line clusters; median |ln(model/input)| "
              f"{np.median(devs):.3f} (max {devs.max():.3f}), beyond Welch noise max {excess.max():.3f}")
    if model.metadata.get("skipped"):
        print("skipped (too few ASDs): " + ", ".join(f"{d} ({n})" for d, n in model.metadata["skipped"].items()))
    if args.plot is not None:
        png = ensure_parent(args.plot or out.with_suffix(".png"))
        rng = np.random.default_rng(args.seed)
        dets = list(model.detectors)
        fits = {d: np.sqrt(np.stack([evaluate_fit(f, dataset.domain, model.detectors[d].node_frequencies)
                                     for f in model.detectors[d].fits])) for d in dets}
        synthetic = {d: np.sqrt(model.sample(rng, 500, d)) for d in dets}
        plot_asd_bands(dataset.domain, {d: dataset.asds[d] for d in dets}, synthetic, png,
                       title=f"PSD model fit to {Path(args.asd_dataset).name}", fits=fits)
        print(f"wrote {png}")
    print(f"wrote {out}")
    return 0
