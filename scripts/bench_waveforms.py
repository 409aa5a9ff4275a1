"""Benchmark: waveforms/s of dingo_gw's WaveformGenerator with 1 and 2 workers, against a plain
loop of bilby's WaveformGenerator (lal_binary_black_hole) on the same parameters, in one run.

    python scripts/bench_waveforms.py [--num 200] [--approximant IMRPhenomPv2] [--rounds 5]

Domain: 8 s, 20-1024 Hz (delta_f = 0.125 Hz), parameters from the default intrinsic prior.
Target: 2 workers >= 1.8x the plain bilby loop (wall clock). The 2-worker figure is the steady
state of a running pool; the pool's start-up (spawning processes that import lalsimulation) is
printed separately, it is paid once per bank. Wall-clock times are the best of ``--rounds``
interleaved rounds. CPU time per waveform (all processes: main + workers) is printed too: on a
machine shared with other jobs the wall-clock speed-up of 2 workers is capped by the cores
actually free, the CPU cost is not.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid`` (Linux /proc)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pool_cpu(gen) -> float:
    """CPU seconds used so far by the worker processes of the generator's pool."""
    return sum(process_cpu(pid) for pid in gen._executor._processes)  # benchmark only: private attribute


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=200, help="number of waveforms (default 200)")
    parser.add_argument("--approximant", default="IMRPhenomPv2")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved repetitions; the best is reported")
    args = parser.parse_args()
    load = os.getloadavg()[0]

    import bilby

    from dingo_gw.domain import FrequencyDomain
    from dingo_gw.priors import build_prior, sample_prior
    from dingo_gw.waveforms import WaveformGenerator

    bilby.core.utils.logger.setLevel("WARNING")
    domain = FrequencyDomain(20.0, 1024.0, 0.125)
    params = sample_prior(build_prior(None), args.num, seed=args.seed)
    warmup = {k: v[:4] for k, v in params.items()}
    n = args.num

    baseline = bilby.gw.waveform_generator.WaveformGenerator(
        duration=domain.duration, sampling_frequency=2 * domain.f_max,
        frequency_domain_source_model=bilby.gw.source.lal_binary_black_hole,
        parameter_conversion=bilby.gw.conversion.convert_to_lal_binary_black_hole_parameters,
        waveform_arguments={"waveform_approximant": args.approximant, "reference_frequency": 20.0,
                            "minimum_frequency": domain.f_min, "maximum_frequency": domain.f_max},
    )
    rows = [{**{k: float(v[i]) for k, v in params.items()}, "luminosity_distance": 100.0} for i in range(n)]

    def bilby_loop():
        return [baseline.frequency_domain_strain(row) for row in rows]

    wall = {"bilby": [], "one": [], "two": []}
    cpu = {"bilby": [], "one": [], "two": []}
    with WaveformGenerator(args.approximant, domain, f_ref=20.0) as gen:
        t0 = time.perf_counter()
        gen.generate_batch(warmup, workers=2)  # start the pool
        t_startup = time.perf_counter() - t0
        for _ in range(args.rounds):
            for key, run in (("bilby", bilby_loop),
                             ("one", lambda: gen.generate_batch(params, workers=1)),
                             ("two", lambda: gen.generate_batch(params, workers=2))):
                workers_before = pool_cpu(gen)
                t0, c0 = time.perf_counter(), time.process_time()
                result = run()
                wall[key].append(time.perf_counter() - t0)
                cpu[key].append(time.process_time() - c0 + pool_cpu(gen) - workers_before)
                if key == "bilby":
                    reference = result
                elif key == "one":
                    h1, _, failed1 = result
                else:
                    h2, _, failed2 = result

    assert np.array_equal(h1, h2) and not failed1.any() and not failed2.any()
    worst = max(np.linalg.norm(h1[i] - reference[i]["plus"]) / np.linalg.norm(reference[i]["plus"]) for i in range(n))
    t_bilby, t_one, t_two = (min(wall[k]) for k in ("bilby", "one", "two"))
    per_wf = lambda seconds: 1e3 * seconds / n
    cpu_bilby, cpu_one, cpu_two = (min(cpu[k]) for k in ("bilby", "one", "two"))

    print(f"load average before the run: {load:.2f} on {os.cpu_count()} cores; best of {args.rounds} rounds")
    print(f"{n} {args.approximant} waveforms, {domain.duration:g} s, {domain.f_min:g}-{domain.f_max:g} Hz "
          f"({len(domain)} bins); max relative L2 difference to bilby: {worst:.1e}")
    print("                                 wall clock                      CPU (all processes)")
    print(f"  bilby WaveformGenerator loop   {n / t_bilby:8.1f} waveforms/s   1.00x      {per_wf(cpu_bilby):.3f} ms/waveform")
    print(f"  dingo_gw, 1 worker             {n / t_one:8.1f} waveforms/s   {t_bilby / t_one:.2f}x      "
          f"{per_wf(cpu_one):.3f} ms/waveform")
    print(f"  dingo_gw, 2 workers            {n / t_two:8.1f} waveforms/s   {t_bilby / t_two:.2f}x      "
          f"{per_wf(cpu_two):.3f} ms/waveform (target >= 1.8x wall clock)")
    print(f"  2 workers vs 1 worker: {t_one / t_two:.2f}x wall clock; on 2 idle cores the CPU cost gives "
          f"{2 * cpu_bilby / cpu_two:.2f}x vs the bilby loop")
    print(f"  2-worker pool start-up: {t_startup:.2f} s once per pool (including it: {t_bilby / (t_two + t_startup):.2f}x)")


if __name__ == "__main__":
    main()
