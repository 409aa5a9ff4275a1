"""Benchmark: training samples/s (data pipeline + optimizer step) for NPE and FMPE at the model
sizes of a training config (default configs/train_cpu.yaml), the data pipeline alone, and the
fraction of a training step spent in the pipeline (target < 20 %).

    python scripts/bench_training.py [--config configs/train_cpu.yaml] [--threads 2] [--batch-size 512]
                                     [--bank BANK.h5] [--rounds 3]

Without --bank a small real bank (IMRPhenomPv2, default intrinsic prior, on the config's domain:
--f-max / --delta-f, SVD-compressed to --svd-size vectors like the shipped bank) is generated
in a temporary folder. ASDs: the aLIGO design curve times random factors. Every figure is the
best of --rounds interleaved repetitions (the machine may be shared). The loop is the trainer's:
a pipeline batch from a seeded generator, then forward + backward + Adam; "prefetch" makes the
next batch in a background thread (local.workers = 1). The last block times ways of drawing the
white noise, the largest single cost of the pipeline.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=str(ROOT / "configs" / "train_cpu.yaml"))
    p.add_argument("--bank", help="an existing bank (default: generate a small one)")
    p.add_argument("--num-waveforms", type=int, default=1000, help="size of the generated bank")
    p.add_argument("--svd-size", type=int, default=200, help="SVD size of the generated bank (0: uncompressed)")
    p.add_argument("--f-max", type=float, default=512.0)
    p.add_argument("--delta-f", type=float, default=0.125)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--batches", type=int, default=6, help="timed batches per measurement")
    p.add_argument("--rounds", type=int, default=3)
    return p.parse_args()


def make_bank(folder: Path, args) -> Path:
    from dingo_gw.config import parse_config
    from dingo_gw.waveforms import BankConfig, generate_bank

    cfg = {"domain": {"f_min": 20.0, "f_max": args.f_max, "delta_f": args.delta_f},
           "waveform": {"approximant": "IMRPhenomPv2", "f_ref": 20.0}, "prior": "default",
           "num_samples": args.num_waveforms, "seed": 0}
    if args.svd_size:
        n_train = min(args.num_waveforms - 100, max(args.svd_size, 4 * args.svd_size))
        cfg["compression"] = {"svd": {"size": args.svd_size, "num_training_samples": n_train,
                                      "num_validation_samples": 100}}
    path = folder / "bench_bank.h5"
    generate_bank(parse_config(cfg, BankConfig), path, workers=2, progress=False)
    return path


def best_time(fn, n: int, rounds: int) -> float:
    """Best over rounds of the mean time per call of fn() over n calls (after one warm-up call)."""
    fn()
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n)
    return best


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    import logging

    logging.getLogger("bilby").setLevel(logging.WARNING)
    from dingo_gw.design_curves import design_asd
    from dingo_gw.nn import build_model, complete_model_config
    from dingo_gw.pipeline import DataPipeline, GNPESettings, PolarizationSource
    from dingo_gw.train import load_train_config
    from dingo_gw.train.data import decompressed_source, window_factor
    from dingo_gw.train.seeds import derive_seed, generator
    from dingo_gw.waveforms import load_bank

    cfg = load_train_config(args.config)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        bank = load_bank(args.bank) if args.bank else load_bank(make_bank(Path(tmp), args))
        t_bank = time.perf_counter() - t0
        dom = bank.domain
        from dingo_gw.domain import FrequencyDomain

        domain = FrequencyDomain(dom.f_min, dom.f_max, dom.delta_f, window_factor(dom, cfg.data.window_roll_off))
        rng = np.random.default_rng(0)
        base = design_asd("aLIGOZeroDetHighPower", domain.frequencies, fill_below=domain.f_min)
        asds = {d: np.stack([base * s for s in rng.uniform(0.8, 1.5, 20)]) for d in cfg.data.detectors}
        gnpe = cfg.model.gnpe

        def make_pipe(source):
            return DataPipeline(domain=domain, detectors=cfg.data.detectors, ref_time=cfg.data.ref_time,
                                polarizations=source, parameters=bank.parameters,
                                asds=asds, inference_parameters=cfg.data.inference_parameters,
                                extrinsic_prior=cfg.data.extrinsic_prior,
                                gnpe=None if gnpe is None else GNPESettings(gnpe.kernel, gnpe.relative),
                                stats_samples=20000)

        sources = {"bank as arrays (decompress_bank: true)": lambda: decompressed_source(bank, "cpu")}
        if bank.svd is not None:
            sources["SVD coefficients, decompressed per batch"] = lambda: PolarizationSource.from_bank(bank)
        pipes = {name: make_pipe(src()) for name, src in sources.items()}
        used = next(iter(pipes)) if (cfg.data.decompress_bank or bank.svd is None) else list(pipes)[-1]
        pipe = pipes[used]
        B = args.batch_size
        print(f"bank: {len(bank)} waveforms, {bank.approximant}, "
              f"{'SVD n=%d' % bank.svd.size if bank.svd is not None else 'uncompressed'} "
              f"(made/read in {t_bank:.0f} s); domain {domain.f_min}-{domain.f_max} Hz, delta_f {domain.delta_f} Hz, "
              f"{pipe.input_shape[-1]} bins, detectors {', '.join(cfg.data.detectors)}, "
              f"{pipe.theta_dim} parameters, GNPE {'on' if gnpe else 'off'}")
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {B}, "
              f"load average {os.getloadavg()[0]:.1f} (2 cores; other jobs may share them)\n")

        counter = [0]

        def batch_of(p):
            counter[0] += 1
            g = generator(derive_seed(0, counter[0]))
            idx = torch.randint(len(p), (B,), generator=g)
            return p.batch(idx, g)

        def batch():
            return batch_of(pipe)

        for name, p in pipes.items():
            t = best_time(lambda: batch_of(p), args.batches, args.rounds)
            if p is pipe:
                t_pipe = t
            print(f"{'pipeline alone, ' + name:62s} {B / t:8.0f} samples/s")
        print(f"(training loops below use: {used})")

        rows = []
        for kind in ("npe", "fmpe"):
            mc = cfg.model.network_config()
            mc["type"] = kind
            mc = complete_model_config(mc, theta_dim=pipe.theta_dim, proxy_dim=pipe.proxy_dim,
                                       input_shape=pipe.input_shape)
            torch.manual_seed(0)
            model = build_model(mc)
            n_params = sum(p.numel() for p in model.parameters())
            opt = torch.optim.Adam(model.parameters(), lr=1e-4)
            fixed = batch()

            def step(b=None):
                b = b if b is not None else fixed
                opt.zero_grad(set_to_none=True)
                loss = model(b.theta, b.data, b.proxies)
                loss.backward()
                opt.step()

            def loop():
                step(batch())

            from concurrent.futures import ThreadPoolExecutor

            pool = ThreadPoolExecutor(1)
            pending = [pool.submit(batch)]

            def prefetch_loop():
                b = pending[0].result()
                pending[0] = pool.submit(batch)
                step(b)

            t_step = best_time(step, args.batches, args.rounds)
            t_loop = best_time(loop, args.batches, args.rounds)
            t_pre = best_time(prefetch_loop, args.batches, args.rounds)
            pending[0].result()
            pool.shutdown()
            rows.append((kind, n_params, t_step, t_loop, t_pre))

        for kind, n_params, t_step, t_loop, t_pre in rows:
            print(f"\n{kind.upper()} ({n_params / 1e6:.1f} M parameters, {4 * n_params / 1e6:.0f} MB float32)")
            print(f"  {'step alone (forward + backward + Adam)':40s} {B / t_step:8.0f} samples/s")
            print(f"  {'pipeline + step (local.workers = 0)':40s} {B / t_loop:8.0f} samples/s")
            print(f"  {'pipeline + step, prefetch (workers = 1)':40s} {B / t_pre:8.0f} samples/s")
            print(f"  pipeline share of pipeline + step: {t_pipe / (t_pipe + t_step):.0%} (from the separate timings), "
                  f"{1 - t_step / t_loop:.0%} (loop minus step); target < 20 %")

        n = B * 2 * len(cfg.data.detectors) * pipe.input_shape[-1]
        g = torch.Generator().manual_seed(0)
        out32 = torch.empty(n, dtype=torch.float32)
        np_rng = np.random.Generator(np.random.SFC64(0))
        np_out = np.empty(n, dtype=np.float32)
        noise = {
            "torch.randn float32 (the pipeline)": lambda: torch.randn(n, generator=g, dtype=torch.float32),
            "torch normal_ into float32 buffer": lambda: out32.normal_(generator=g),
            "torch.randn float64": lambda: torch.randn(n, generator=g, dtype=torch.float64),
            "numpy SFC64 standard_normal float32": lambda: np_rng.standard_normal(n, dtype=np.float32, out=np_out),
        }
        print(f"\nwhite noise for one batch ({n / 1e6:.1f} M numbers):")
        for name, fn in noise.items():
            t = best_time(fn, 3, args.rounds)
            print(f"  {name:40s} {t * 1e3:7.1f} ms ({t / n * 1e9:.2f} ns/number, {t / t_pipe:.0%} of a pipeline batch)")


if __name__ == "__main__":
    main()
