"""``dingo_analyze``: posterior of one event, any strain, or an injection, with importance sampling.

    dingo_analyze --event GW150914 [--network FILE|NAME] [--outdir DIR] [--num-samples N] [--seed S]
    dingo_analyze --gps T --strain H1=FILE --strain L1=FILE [--psd H1=FILE ...]
    dingo_analyze --injection PARAMS.json|prior [--gps T] [--psd H1=FILE|design:NAME ...]
    dingo_analyze --injection PARAMS.json|prior --gps T --strain H1=FILE --strain L1=FILE   (into real noise)
    dingo_analyze ... --is-parts N        then  dingo_analyze --proposal FILE --is-part K  (K = 1..N)
                                          then  dingo_result merge PART_FILES   (docs/cluster.md)

Writes ``<label>_result.hdf5`` (bilby's HDF5 result format; ``--result-format json``: bilby's JSON,
``<label>_result.json``) and ``<label>_corner.png`` into --outdir and prints
a table of medians and 90 % intervals. Exit status 0: posterior; 1: the importance sampling
rejected the network's proposal (``<label>_failed_proposal.json`` is written instead, no
posterior); 2: bad input. See docs/analyze.md.
"""

from __future__ import annotations

import argparse
import sys

from dingo_gw.cli._common import ArgumentParser, SEED, WORKERS, number, output_dir, output_file, run_main
from dingo_gw.errors import ConfigError
from dingo_gw.io.lock import output_lock


def _pairs(values: list[str] | None, option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values or []:
        det, sep, path = v.partition("=")
        if not sep or not det or not path:
            raise ConfigError(f"{option} expects DET=FILE (e.g. {option} H1=H-H1_....hdf5), got {v!r}")
        if det in out:
            raise ConfigError(f"{option} given twice for {det}")
        out[det] = path
    return out


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="dingo_analyze", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    data = p.add_argument_group("data (one of --event, --strain with --gps, --injection; --injection with --strain "
                                "and --gps: into that real noise)")
    data.add_argument("--event", help="catalogue event name, e.g. GW150914")
    data.add_argument("--gps", type=float, help="trigger GPS time (s) of --strain data or of an injection")
    data.add_argument("--strain", action="append", metavar="DET=FILE", help="strain file of a detector (repeat)")
    data.add_argument("--psd", action="append", metavar="DET=FILE",
                      help="PSD text file of a detector (f, PSD [1/Hz]), or DET=design:NAME (repeat)")
    data.add_argument("--injection", metavar="PARAMS.json|prior",
                      help="analyse a simulated signal in Gaussian noise (with --strain and --gps: in the real noise "
                           "of the analysis segment at --gps, which must hold no signal): parameters from a JSON file "
                           "or a prior draw")
    data.add_argument("--data-dir", action="append", default=[], metavar="DIR",
                      help="folder with strain/PSD files (searched before $DINGO_GW_DATA and the project's data/)")
    p.add_argument("--network", help="network file, or the name of a shipped network (default: the shipped network "
                   "whose detectors have data and whose chirp-mass range holds the event's; dingo_ls --networks lists "
                   "them)")
    p.add_argument("--chirp-mass", type=number(float, 0.0, 1e4, low_open=True), metavar="MSUN",
                   help="detector-frame chirp mass estimate (solar masses) that picks the shipped network "
                        "(default for --event: the catalogue's estimate; for --strain data, where several "
                        "networks take the detectors: a matched-filter trigger estimate from the strain)")
    p.add_argument("--outdir", default=".", help="output folder (created if missing)")
    p.add_argument("--label", help="output file prefix (default: the event name)")
    p.add_argument("--num-samples", type=number(int, 1, 10**7), default=20000,
                   help="network proposal samples (default 20000)")
    p.add_argument("--seed", type=SEED, default=0, help="random seed (same seed, same numbers)")
    p.add_argument("--gibbs-iterations", type=number(int, 1, 10**5), default=30,
                   help="GNPE Gibbs iterations (default 30)")
    p.add_argument("--gibbs-chains", type=number(int, 1, 10**7),
                   help="Gibbs chains fitting the proxy density (default min(N, 2000))")
    p.add_argument("--gnpe-init", choices=("network", "trigger"), default="network",
                   help="start Gibbs chains from the embedded initialisation network (default) or at the trigger time")
    p.add_argument("--time-spread", type=number(float, 0.0, 1.0, low_open=True), default=0.01,
                   help="with --gnpe-init trigger: arrival times start uniform in trigger ± this (s, default 0.01)")
    p.add_argument("--workers", type=WORKERS, default=2, help="waveform processes for importance sampling (default 2)")
    p.add_argument("--threads", type=number(int, 1, 1024), default=1,
                   help="torch threads for network sampling (default 1; 2 may help on an otherwise idle machine)")
    p.add_argument("--glitch", choices=("gate", "error", "ignore"), default="gate",
                   help="loud transients in the analysis segment: gate them (default), stop, or keep them")
    p.add_argument("--lines", choices=("replace", "keep"), default="keep",
                   help="frequency bins of spectral lines that the PSD does not describe, found in the off-source "
                        "strain: kept as they are (default) or Gaussian noise in the network's input (the likelihood "
                        "keeps the data; raises the network's own efficiency on real data, docs/analyze.md)")
    p.add_argument("--exact-projection", action="store_true",
                   help="evaluate the network's first layer on shifted data instead of interpolating it")
    p.add_argument("--refine", choices=("auto", "never"), default="auto",
                   help="refine a network proposal whose sample efficiency is below --refine-efficiency with the "
                        "likelihood: SMC, then importance sampling of a fitted proposal (default auto; docs/analyze.md)")
    p.add_argument("--refine-efficiency", type=number(float, 0.0, 1.0, low_open=True), default=0.1,
                   help="sample efficiency a proposal must reach without refinement (default 0.1)")
    p.add_argument("--refine-particles", type=number(int, 100, 10**6), default=4000,
                   help="SMC particles of the refinement (default 4000; cost ~ particles)")
    p.add_argument("--refine-passes", type=number(int, 1, 10), default=1,
                   help="SMC passes of the refinement, each after the first starting from a fit to the previous "
                        "particles (default 1; 2 helps where the network misses the posterior's peak, e.g. low-mass "
                        "events: docs/events.md)")
    p.add_argument("--refine-start", choices=("network", "prior"), default="network",
                   help="where the refinement's SMC starts: the network's samples (default) or the prior "
                        "(a network-free baseline, to measure what the network gives the refinement)")
    p.add_argument("--refine-samples", type=number(int, 1000, 10**7), default=200000,
                   help="importance samples drawn from the refined proposal (default 200000)")
    p.add_argument("--no-relative-binning", dest="relative_binning", action="store_false",
                   help="refine with the exact likelihood throughout (~5x slower) instead of relative binning "
                        "with the exact likelihood for the samples of largest weight, until < 1e-3 of the weight is "
                        "left with relative binning")
    p.add_argument("--no-distance-marginalization", dest="distance_marginalization", action="store_false",
                   help="refine the distance with the other parameters instead of drawing it from its conditional "
                        "posterior given them (distance marginalisation, the default)")
    p.add_argument("--target-neff", type=number(float, 0.0, 1e9, low_open=True), metavar="N",
                   help="draw proposal batches (of --num-samples network draws, or --refine-samples refined draws) "
                        "until the effective sample size of all together reaches N, or the budget is spent")
    p.add_argument("--max-samples", type=number(int, 1, 10**9), metavar="M",
                   help="with --target-neff: at most M draws of that proposal in all (default 10 batches)")
    p.add_argument("--max-time", type=number(float, 0.0, 1e7, low_open=True), metavar="S",
                   help="with --target-neff: no new batch after S seconds of the analysis")
    p.add_argument("--result-format", choices=("hdf5", "json"), default="hdf5",
                   help="result file <label>_result.hdf5 (default) or <label>_result.json, bilby's formats both")
    p.add_argument("--no-corner", action="store_true", help="do not draw the corner plot")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    parts = p.add_argument_group("importance sampling in parallel jobs (docs/cluster.md)")
    parts.add_argument("--is-parts", type=number(int, 1, 10**5), metavar="N",
                       help="sample the network, save <label>_proposal.h5 for N importance-sampling part jobs, stop")
    parts.add_argument("--proposal", metavar="FILE", help="with --is-part: the proposal file of --is-parts")
    parts.add_argument("--is-part", type=number(int, 1, 10**5), metavar="K",
                       help="compute part K (1..N) of the proposal's importance sampling; merge with dingo_result merge")
    parts.add_argument("--part-out", metavar="FILE",
                       help="with --is-part: the part file (default <label>_is_parts/part_K_of_N.h5 next to the proposal)")
    return p


def _label(settings) -> str:
    """The label of the output files, as :func:`dingo_gw.inference.analyze.default_label` makes it."""
    from dingo_gw.events import get_event
    from dingo_gw.inference.analyze import default_label

    event = get_event(settings.event) if settings.event is not None else None
    return default_label(settings, event, settings.gps if settings.gps is not None else 0.0)


def run_is_part(args) -> int:
    """--proposal FILE --is-part K: one importance-sampling part job."""
    from dingo_gw.inference.importance.parts import run_part

    if args.proposal is None or args.is_part is None:
        raise ConfigError("--proposal FILE and --is-part K go together (one importance-sampling part job)")
    if args.is_parts is not None:
        raise ConfigError("--is-parts N saves a proposal; a part job takes --proposal FILE --is-part K only")
    if args.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {args.workers}")
    if args.part_out is None:
        path = run_part(args.proposal, args.is_part, workers=args.workers, progress=not args.no_progress)
    else:
        with output_file(args.part_out) as out:
            path = run_part(args.proposal, args.is_part, out=out, workers=args.workers, progress=not args.no_progress)
    print(f"wrote {path}" if path is not None else
          f"nothing to compute for part {args.is_part}: the proposal failed; run dingo_result merge --proposal "
          f"{args.proposal} for the report")
    return 0


@run_main
def main(argv=None) -> int:
    from dingo_gw.inference.analyze import AnalysisSettings, analyze
    from dingo_gw.inference.outputs import summary_text

    args = build_parser().parse_args(argv)
    if args.is_part is not None or args.proposal is not None or args.part_out is not None:
        return run_is_part(args)
    settings = AnalysisSettings(
        event=args.event, gps=args.gps, strain_files=_pairs(args.strain, "--strain"),
        psd_files=_pairs(args.psd, "--psd"), injection=args.injection, network=args.network,
        chirp_mass=args.chirp_mass,
        data_dirs=list(args.data_dir), outdir=args.outdir, label=args.label, num_samples=args.num_samples,
        seed=args.seed, gibbs_iterations=args.gibbs_iterations, gibbs_chains=args.gibbs_chains,
        workers=args.workers, glitch=args.glitch, lines=args.lines, exact_projection=args.exact_projection,
        corner=not args.no_corner, progress=not args.no_progress, threads=args.threads,
        gnpe_init=args.gnpe_init, time_spread=args.time_spread,
        is_parts=args.is_parts, save_proposal_only=args.is_parts is not None,
        refine=args.refine, refine_efficiency=args.refine_efficiency,
        refine_particles=args.refine_particles, refine_passes=args.refine_passes, refine_samples=args.refine_samples,
        refine_start=args.refine_start,
        relative_binning=args.relative_binning, distance_marginalization=args.distance_marginalization,
        result_format=args.result_format, target_neff=args.target_neff, max_samples=args.max_samples, max_time=args.max_time,
    )
    settings.check()
    label = _label(settings)  # one analysis per label and folder at a time
    with output_dir(settings.outdir, lock=False) as outdir, \
            output_lock(f"{outdir / label}_*", lock=outdir / f".{label}.lock"):
        out = analyze(settings)
    if out.result is None:  # --is-parts: the part jobs come next
        proposal = out.files["proposal"]
        print(f"wrote {proposal}\nnext: dingo_analyze --proposal {proposal} --is-part K  for K = 1..{args.is_parts} "
              f"(one job each), then dingo_result merge {proposal.parent / (out.label + '_is_parts')}/part_*.h5")
        return 0
    print(summary_text(out))
    return 0 if out.result.ok else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
