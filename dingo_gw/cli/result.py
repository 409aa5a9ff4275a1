"""``dingo_result``: work with analysis results.

    dingo_result merge run/GW150914_is_parts/part_*.h5 [--out run/GW150914_result.hdf5]
    dingo_result merge --proposal run/GW150914_proposal.h5        # proposal failed before any part
    dingo_result summary run/GW150914_result.hdf5

``merge`` combines the importance-sampling part files of ``dingo_analyze --is-parts N`` /
``--is-part K`` into the result (and corner plot) that one ``dingo_analyze`` run with the same
seed would have written (bilby's hdf5 or json result format: the extension of --out, else the
analysis's ``--result-format``); exit status 0: posterior, 1: failed proposal. ``summary`` prints the
table of medians and 90 % intervals and the diagnostics of a result file. See docs/cluster.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dingo_gw.cli._common import run_main
from dingo_gw.errors import ConfigError

#: --out names: LABEL_result.hdf5 or LABEL_result.json (the extension picks the format).
RESULT_SUFFIXES = {"_result.hdf5": "hdf5", "_result.json": "json"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dingo_result", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="{merge,summary}")
    m = sub.add_parser("merge", help="merge importance-sampling part files into the result")
    m.add_argument("parts", nargs="*", metavar="PART_FILE", help="part files (any order), one per part")
    m.add_argument("--proposal", metavar="FILE", help="the proposal file (default: the one the parts name)")
    m.add_argument("--out", metavar="DIR/LABEL_result.{hdf5,json}",
                   help="result file; its extension picks bilby's hdf5 or json format (default: "
                        "<outdir>/<label>_result.<format> of the analysis)")
    m.add_argument("--no-corner", action="store_true", help="do not draw the corner plot")
    s = sub.add_parser("summary", help="print the summary table and diagnostics of a result file")
    s.add_argument("result", metavar="RESULT", help="a *_result.json or *_result.hdf5 file")
    return p


def _out_location(out: str | None) -> tuple[Path | None, str | None, str | None]:
    """(folder, label, format) of --out (all None without it)."""
    if out is None:
        return None, None, None
    path = Path(out)
    for suffix, fmt in RESULT_SUFFIXES.items():
        if path.name.endswith(suffix) and path.name != suffix:
            return path.parent, path.name[: -len(suffix)], fmt
    raise ConfigError(f"--out must name a file LABEL_result.hdf5 or LABEL_result.json, got {out!r}")


def merge(args) -> int:
    from dingo_gw.cli._common import ensure_parent
    from dingo_gw.inference.outputs import summary_text
    from dingo_gw.inference.importance.parts import merge_parts

    outdir, label, result_format = _out_location(args.out)
    if args.out is not None:
        ensure_parent(args.out)
    out = merge_parts(args.parts, args.proposal, outdir=outdir, label=label,
                      corner=False if args.no_corner else None, result_format=result_format)
    print(summary_text(out))
    return 0 if out.result.ok else 1


def summary(args) -> int:
    from dingo_gw.results import Result

    result = Result.load(args.result)
    print(result.summary_table())
    meta = result.meta_data
    for key in ("label", "event", "trigger_time", "num_proposal_samples", "sample_efficiency", "n_eff"):
        if key in meta:
            print(f"{key}: {meta[key]}")
    network = meta.get("network") or {}
    if network:
        print(f"network: {network.get('path')} (sha256 {str(network.get('sha256'))[:12]}...)")
    return 0


@run_main
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return merge(args) if args.command == "merge" else summary(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
