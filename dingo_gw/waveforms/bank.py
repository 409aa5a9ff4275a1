"""HDF5 waveform banks: generation (parallel, chunked, resumable, sharded), merging, SVD
compression, and reading.

A bank holds N waveforms (h_plus, h_cross) on a FrequencyDomain at the reference extrinsic
parameters (luminosity_distance = 100 Mpc, geocent_time = 0), with the parameters that made them.
Schema (docs/waveform_banks.md)::

    /                       attrs: dingo_gw_kind = "waveform_bank", format_version, metadata (JSON)
    /parameters/<name>      float64 (N,)   bilby names
    /sample_index           int64 (N,)     position of each row in the seed's parameter draw
    /waveforms/h_plus       complex64 (N, n_freq)   uncompressed banks
    /waveforms/h_cross
    /svd/V                  complex128 (n_freq, n)  compressed banks (see svd.py)
    /svd/singular_values    float64 (n,)
    /svd/validation_mismatch float64 (n_val, 2)     held-out mismatches of h_plus, h_cross
    /coefficients/h_plus    complex64 (N, n)
    /coefficients/h_cross

While a bank is generated it lives in ``.<name>.tmp`` (dingo_gw.io.atomic.temporary_path) with
an extra ``/progress`` group (chunks done, failed rows); the file gets its final name only when
complete, so no reader ever sees a partial bank.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

import h5py
import numpy as np

from dingo_gw.domain import FrequencyDomain
from dingo_gw.errors import ConfigError, DataError, DingoError, FileFormatError
from dingo_gw.io.atomic import atomic_write, check_writable, close_quietly, h5_writer, temporary_path, write_failed
from dingo_gw.io.hdf5 import open_h5, read_json_attr, stamp, write_json_attr
from dingo_gw.priors import EXTRINSIC_PARAMETERS, REFERENCE_EXTRINSIC, build_prior, sample_prior
from dingo_gw.versions import package_versions
from dingo_gw.waveforms.config import BankConfig, SVDSettings
from dingo_gw.waveforms.generator import (
    FailureSummary, WaveformGenerator, lal_parameters, summarize_failures,
)
from dingo_gw.waveforms.svd import DEFAULT_MISMATCH_ASD, SVDBasis, fit_svd, mismatch, mismatch_summary

logger = logging.getLogger(__name__)

KIND = "waveform_bank"
POLARIZATIONS = ("h_plus", "h_cross")

#: Target size in bytes of one HDF5 chunk of waveform rows.
_H5_CHUNK_BYTES = 1 << 20

#: Test hook: called with the chunk number after each chunk is recorded as done.
_after_chunk: Callable[[int], None] | None = None


# --- parameters ---------------------------------------------------------------------------

def bank_prior(config: BankConfig):
    """The bank's intrinsic bilby prior; ConfigError if it samples extrinsic parameters."""
    prior = build_prior(config.prior)
    extrinsic = sorted(k for k in prior if k in EXTRINSIC_PARAMETERS and not _is_fixed(prior[k]))
    if extrinsic:
        raise ConfigError(
            f"prior: {', '.join(extrinsic)} are extrinsic; banks are generated at the reference values "
            f"{REFERENCE_EXTRINSIC} and extrinsic parameters are applied later; remove them from the prior"
        )
    return prior


def _is_fixed(p) -> bool:
    import bilby

    return isinstance(p, (bilby.core.prior.DeltaFunction, bilby.core.prior.Constraint))


def prior_strings(prior) -> dict[str, str]:
    """The prior as bilby prior strings (self-contained; re-readable by bilby)."""
    return {key: str(prior[key]) for key in prior}


def bank_parameters(sampled: Mapping[str, np.ndarray], lp: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """All parameters stored for a bank: the sampled ones, the waveform arguments ``lp``
    (mass_1, mass_2, spins, ..., luminosity_distance), chirp_mass, mass_ratio, geocent_time."""
    out = {k: np.asarray(v, dtype=float) for k, v in sampled.items()}
    out.update({k: np.asarray(v, dtype=float) for k, v in lp.items()})
    m1, m2 = out["mass_1"], out["mass_2"]
    out.setdefault("chirp_mass", (m1 * m2) ** 0.6 / (m1 + m2) ** 0.2)
    out.setdefault("mass_ratio", m2 / m1)
    n = len(m1)
    for key, value in REFERENCE_EXTRINSIC.items():
        out.setdefault(key, np.full(n, float(value)))
    return dict(sorted(out.items()))


def shard_range(num_samples: int, index: int, count: int) -> tuple[int, int]:
    """Rows [start, stop) of shard ``index`` (1-based) of ``count`` in a draw of ``num_samples``."""
    if not (count >= 1 and 1 <= index <= count):
        raise ConfigError(f"shard must be I/N with 1 <= I <= N, got {index}/{count}")
    if count > num_samples:
        raise ConfigError(f"cannot split {num_samples} samples into {count} shards")
    return (index - 1) * num_samples // count, index * num_samples // count


# --- generation ---------------------------------------------------------------------------

@dataclass
class BankSummary:
    """What a generation, merge or compression produced."""

    path: Path
    num_waveforms: int
    failures: FailureSummary | None = None
    svd: dict | None = None

    def __str__(self) -> str:
        lines = [f"wrote {self.path}: {self.num_waveforms} waveforms"]
        if self.failures is not None and self.failures.count:
            lines.append(f"{self.failures} (excluded from the bank)")
        if self.svd:
            mm = self.svd["mismatch"]["all"]
            lines.append(
                f"SVD basis of {self.svd['size']} vectors; held-out mismatch ({self.svd['mismatch']['num']} "
                f"waveforms): median {mm['p50']:.2e}, 99th percentile {mm['p99']:.2e}, max {mm['max']:.2e}"
            )
        return "\n".join(lines)


def generate_bank(
    config: BankConfig,
    out: str | Path,
    workers: int = 1,
    shard: tuple[int, int] | None = None,
    resume: bool = False,
    progress: bool = True,
) -> BankSummary:
    """Generate the bank described by ``config`` into ``out`` (HDF5).

    Parameters are drawn up front from ``config.seed``; ``shard = (I, N)`` writes the I-th of N
    contiguous slices of that draw (1-based). Chunks of ``config.chunk_size`` waveforms are
    written to ``.<out>.tmp`` and recorded as done, so ``resume=True`` continues a killed run;
    the result is identical for any ``workers`` and any interruption. Waveforms LAL fails on
    are reported and excluded. With ``config.compression.svd`` (and no shard) the bank is
    SVD-compressed at the end.
    """
    out = check_writable(out)
    domain = config.domain.build()
    generator = WaveformGenerator(config.waveform.approximant, domain, config.waveform.f_ref, config.waveform.f_start)
    prior = bank_prior(config)
    sampled = sample_prior(prior, config.num_samples, config.seed)
    try:
        lp = lal_parameters(sampled)
    except DataError as e:
        raise ConfigError(f"prior: {e}") from None
    generator.check_parameters(lp)
    start, stop = shard_range(config.num_samples, *shard) if shard else (0, config.num_samples)
    sampled = {k: v[start:stop] for k, v in sampled.items()}
    lp = {k: v[start:stop] for k, v in lp.items()}
    params = bank_parameters(sampled, lp)

    metadata = _bank_metadata(config, prior, generator, None if shard is None else (*shard, start, stop))
    tmp = temporary_path(out)
    n_rows = stop - start
    chunks = [(a, min(a + config.chunk_size, n_rows)) for a in range(0, n_rows, config.chunk_size)]
    try:
        f = _open_progress_file(tmp, metadata, params, np.arange(start, stop), len(domain), len(chunks), resume)
    except OSError as e:  # disk full or I/O error: the file is incomplete
        generator.close()
        tmp.unlink(missing_ok=True)
        raise write_failed(out, e) from None
    try:
        _fill_chunks(f, generator, lp, chunks, workers, progress)
        failed = f["progress/failed"][()].astype(bool)
        failures = _failure_summary(f, chunks, params, start)
    except OSError as e:  # writes after the failure were dropped: the file cannot be resumed
        close_quietly(f)
        tmp.unlink(missing_ok=True)
        raise write_failed(out, e) from None
    except BaseException:
        f.close()  # interrupted: the chunks done so far stay resumable
        raise
    finally:
        generator.close()
    metadata["failed"] = failures.to_dict()
    if failures.count:
        logger.warning("%s (excluded from the bank)", failures)
    if failures.count == n_rows:
        f.close()
        tmp.unlink()
        raise DataError(f"no waveform could be generated: {failures}")

    svd_settings = config.svd if shard is None else None
    if shard is not None and config.svd is not None:
        logger.info("shard written uncompressed; merge the shards, then run dingo_build_svd")
    if not failures.count and svd_settings is None:  # the generation file is the bank
        try:
            del f["progress"]
            del f.attrs["run_identity"]
            write_json_attr(f, "metadata", {**metadata, "svd": None})
            f.close()
        except OSError as e:
            close_quietly(f)
            tmp.unlink(missing_ok=True)
            raise write_failed(out, e) from None
        os.replace(tmp, out)
        return BankSummary(out, n_rows, failures)
    try:
        source = _RowSource([(f, np.flatnonzero(~failed))])
        with atomic_write(out, out.with_name(f".{out.name}.final.tmp")) as final:
            svd_meta = _write_bank(final, source, metadata, svd_settings, config.chunk_size, progress)
    except DingoError as e:
        raise type(e)(f"{e}; the generated waveforms are kept in {tmp}: fix this and rerun with --resume") from None
    finally:
        f.close()
    tmp.unlink()
    return BankSummary(out, int((~failed).sum()), failures, svd_meta)


def _bank_metadata(config: BankConfig, prior, generator: WaveformGenerator, shard: tuple | None) -> dict:
    cfg = config.model_dump(mode="json")
    cfg["prior"] = prior_strings(prior)  # self-contained, whatever the prior's source
    return {
        "config": cfg,
        "approximant": generator.approximant,
        "f_ref": generator.f_ref,
        "f_start": generator.f_start,
        "domain": generator.domain.to_dict(),
        "reference_extrinsic": dict(REFERENCE_EXTRINSIC),
        "num_samples": config.num_samples,
        "seed": config.seed,
        "shard": None if shard is None else dict(zip(("index", "count", "start", "stop"), shard)),
        "versions": package_versions(),
    }


def _failure_summary(f: h5py.File, chunks, params: Mapping[str, np.ndarray], start: int) -> FailureSummary:
    """Failures recorded in a finished generation file; first_index is the position in the draw."""
    failed = f["progress/failed"][()].astype(bool)
    errors = [e.decode(errors="replace") for e in f["progress/first_error"][()]]
    first = next(((k, e) for k, e in enumerate(errors) if e), None)
    row, message = None, None
    if first is not None:
        in_chunk, _, message = first[1].partition("|")
        row = chunks[first[0]][0] + int(in_chunk)
    summary = summarize_failures(params, failed, row, message)
    if summary.first_index is not None:
        summary.first_index += start
    return summary


def _open_progress_file(tmp: Path, metadata: dict, params: dict, sample_index: np.ndarray,
                        n_freq: int, n_chunks: int, resume: bool) -> h5py.File:
    """The generation file: reopened if resuming a run with the same metadata, else created."""
    # Compression settings do not change the generated waveforms: they may differ on resume.
    identity = json.dumps({**metadata, "config": {**metadata["config"], "compression": None}}, sort_keys=True)
    if tmp.exists() and resume:
        try:
            f = h5_writer(tmp, "r+")
        except OSError:
            logger.warning("cannot read the unfinished %s (killed while writing metadata?); starting over", tmp)
        else:
            stored = f.attrs.get("run_identity")
            if stored == identity and "progress" in f:
                done = int(f["progress/chunk_done"][()].sum())
                logger.info("resuming %s: %d of %d chunks already done", tmp, done, n_chunks)
                return f
            f.close()
            if stored is not None and stored != identity:
                raise ConfigError(
                    f"cannot resume {tmp}: it was started with different settings "
                    f"({_first_difference(stored, identity)}); rerun without --resume to start over"
                )
            logger.warning("%s holds no resumable run (killed while finishing?); starting over", tmp)
    elif resume:
        logger.info("nothing to resume at %s; starting a new run", tmp)
    if tmp.exists():
        tmp.unlink()
    f = h5_writer(tmp)
    try:
        stamp(f, KIND)
        write_json_attr(f, "metadata", metadata)
        f.attrs["run_identity"] = identity
        _create_rows(f, params, sample_index)
        n = len(sample_index)
        # Early allocation: after creation, writing a chunk never changes the file's metadata,
        # so a kill at any moment leaves a readable file with all recorded chunks intact.
        for pol in POLARIZATIONS:
            _early_dataset(f, f"waveforms/{pol}", (n, n_freq), np.complex64, chunks=_row_chunks(n, n_freq))
        progress = f.create_group("progress")
        _early_dataset(progress, "chunk_done", (n_chunks,), np.uint8)[...] = 0
        _early_dataset(progress, "failed", (n,), np.uint8)[...] = 0
        _early_dataset(progress, "first_error", (n_chunks,), "S400")[...] = b""
        f.flush()
        f.check()
    except BaseException:
        close_quietly(f)
        tmp.unlink(missing_ok=True)
        raise
    return f


def _fill_chunks(f: h5py.File, generator: WaveformGenerator, lp: Mapping[str, np.ndarray],
                 chunks: Sequence[tuple[int, int]], workers: int, progress: bool) -> None:
    from tqdm.auto import tqdm

    done = f["progress/chunk_done"][()].astype(bool)
    todo = [c for c, d in zip(chunks, done) if not d]
    index = {c: k for k, c in enumerate(chunks)}
    hp, hc = f["waveforms/h_plus"], f["waveforms/h_cross"]
    failed, first_error, chunk_done = f["progress/failed"], f["progress/first_error"], f["progress/chunk_done"]
    total = chunks[-1][1] if chunks else 0
    with tqdm(total=total, initial=total - sum(b - a for a, b in todo), unit="wf", disable=not progress,
              desc=f"{generator.approximant} bank") as bar:
        for a, b, res in generator.iter_blocks(lp, todo, workers, dtype=np.complex64):
            k = index[(a, b)]
            hp[a:b] = res.h_plus
            hc[a:b] = res.h_cross
            failed[a:b] = res.failed
            if res.first_error is not None:
                first_error[k] = f"{res.first_error[0]}|{res.first_error[1]}".encode()[:400]
            f.flush()
            chunk_done[k] = 1
            f.flush()
            f.check()  # a failed write (disk full) stops the run here
            bar.update(b - a)
            if _after_chunk is not None:
                _after_chunk(k)


def _first_difference(a: str, b: str) -> str:
    try:
        da, db = json.loads(a), json.loads(b)
    except (json.JSONDecodeError, TypeError):
        return "unreadable record"
    for key in sorted(set(da) | set(db)):
        if da.get(key) != db.get(key):
            return f"{key} differs"
    return "unknown difference"


# --- writing finished banks ---------------------------------------------------------------

def _row_chunks(n_rows: int, width: int) -> tuple[int, int]:
    rows = max(1, min(n_rows, _H5_CHUNK_BYTES // (8 * width)))
    return rows, width


def _early_dataset(group: h5py.Group, name: str, shape, dtype, chunks=None) -> h5py.Dataset:
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    return group.create_dataset(name, shape=shape, dtype=dtype, chunks=chunks, dcpl=dcpl, fill_time="never")


def _create_rows(f: h5py.File, params: Mapping[str, np.ndarray], sample_index: np.ndarray) -> None:
    g = f.create_group("parameters")
    for key, value in params.items():
        g.create_dataset(key, data=np.asarray(value, dtype=np.float64))
    f.create_dataset("sample_index", data=np.asarray(sample_index, dtype=np.int64))


class _RowSource:
    """Rows of one or more open bank files (each with a selection of rows), read in chunks."""

    def __init__(self, parts: Sequence[tuple[h5py.File, np.ndarray]]):
        self.parts = [(f, np.asarray(rows, dtype=np.int64)) for f, rows in parts]
        self.offsets = np.cumsum([0] + [len(r) for _, r in self.parts])
        names = list(self.parts[0][0]["parameters"])
        self.parameters = {
            k: np.concatenate([f["parameters"][k][()][rows] for f, rows in self.parts]) for k in names
        }
        self.sample_index = np.concatenate([f["sample_index"][()][rows] for f, rows in self.parts])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def read(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """(h_plus, h_cross) complex64 of rows [lo, hi)."""
        out = {pol: [] for pol in POLARIZATIONS}
        for (f, rows), off in zip(self.parts, self.offsets[:-1]):
            sel = rows[max(lo - off, 0):max(hi - off, 0)]
            if len(sel) == 0:
                continue
            first, last = int(sel[0]), int(sel[-1]) + 1
            for pol in POLARIZATIONS:
                out[pol].append(f["waveforms"][pol][first:last][sel - first])
        return tuple(np.concatenate(out[pol]) for pol in POLARIZATIONS)

    def blocks(self, lo: int, hi: int, size: int) -> Iterator[tuple[int, int]]:
        for a in range(lo, hi, size):
            yield a, min(a + size, hi)


def _write_bank(path: Path, source: _RowSource, metadata: dict, svd_settings: SVDSettings | None,
                chunk_size: int, progress: bool) -> dict | None:
    """Write the rows of ``source`` as a finished bank at ``path``; SVD-compressed if settings given.

    Returns the SVD metadata (with held-out mismatches) or None.
    """
    from tqdm.auto import tqdm

    domain = FrequencyDomain.from_dict(metadata["domain"])
    n = len(source)
    basis, svd_meta, n_train, n_val = None, None, 0, 0
    if svd_settings is not None:
        basis, n_train, n_val = _fit_basis(source, domain, svd_settings, chunk_size)
        svd_meta = {
            "size": basis.size,
            "num_training_samples": n_train,
            "whiten": svd_settings.whiten,
        }
    mismatches = np.zeros((n_val, 2))
    asd_name = (svd_settings.whiten or DEFAULT_MISMATCH_ASD) if svd_settings is not None else None
    with h5_writer(path) as f:
        stamp(f, KIND)
        _create_rows(f, source.parameters, source.sample_index)
        if basis is None:
            group = f.create_group("waveforms")
            shape, chunks = (n, len(domain)), _row_chunks(n, len(domain))
        else:
            basis.write(f.create_group("svd"))
            group = f.create_group("coefficients")
            shape, chunks = (n, basis.size), _row_chunks(n, basis.size)
        dsets = {pol: group.create_dataset(pol, shape=shape, dtype=np.complex64, chunks=chunks) for pol in POLARIZATIONS}
        desc = "compressing" if basis is not None else "writing"
        with tqdm(total=n, unit="wf", disable=not progress, desc=desc) as bar:
            for a, b in source.blocks(0, n, chunk_size):
                waveforms = source.read(a, b)
                for j, (pol, h) in enumerate(zip(POLARIZATIONS, waveforms)):
                    if basis is None:
                        dsets[pol][a:b] = h
                        continue
                    coeffs = basis.compress(h).astype(np.complex64)
                    dsets[pol][a:b] = coeffs
                    lo, hi = max(a, n_train), min(b, n_train + n_val)
                    if lo < hi:
                        exact = h[lo - a:hi - a]
                        approx = basis.decompress(coeffs[lo - a:hi - a])
                        mismatches[lo - n_train:hi - n_train, j] = mismatch(exact, approx, domain, asd_name)
                f.check()
                bar.update(b - a)
        if basis is not None:
            svd_meta["mismatch"] = {
                "asd": asd_name,
                "num": n_val,
                "all": mismatch_summary(mismatches),
                "h_plus": mismatch_summary(mismatches[:, 0]),
                "h_cross": mismatch_summary(mismatches[:, 1]),
            }
            f["svd"].create_dataset("validation_mismatch", data=mismatches)
        write_json_attr(f, "metadata", {**metadata, "svd": svd_meta})
    return svd_meta


def _fit_basis(source: _RowSource, domain: FrequencyDomain, settings: SVDSettings, chunk_size: int):
    n = len(source)
    n_train = settings.num_training_samples
    if n_train >= n:
        raise ConfigError(
            f"compression.svd.num_training_samples = {n_train} must be smaller than the number of waveforms "
            f"in the bank ({n}), to leave held-out waveforms for the mismatch"
        )
    n_val = min(settings.num_validation_samples, n - n_train)
    block = max(1, min(chunk_size, 256))

    def blocks():
        for a, b in source.blocks(0, n_train, block):
            h_plus, h_cross = source.read(a, b)
            yield np.concatenate([h_plus, h_cross])

    logger.info("fitting an SVD basis of %d vectors to %d training waveforms", settings.size, n_train)
    basis = fit_svd(blocks, domain, settings.size, settings.whiten)
    return basis, n_train, n_val


def compress_bank(path: str | Path, settings: SVDSettings, progress: bool = True) -> BankSummary:
    """SVD-compress the (uncompressed) bank at ``path`` in place, atomically."""
    path = Path(path)
    bank = load_bank(path)
    if bank.svd is not None:
        raise DataError(f"{path} is already SVD-compressed")
    with atomic_write(path) as tmp:
        with open_h5(path, KIND) as f:
            source = _RowSource([(f, np.arange(len(bank)))])
            svd_meta = _write_bank(tmp, source, bank.metadata, settings, bank.chunk_size, progress)
    return BankSummary(path, len(bank), None, svd_meta)


# --- merging ------------------------------------------------------------------------------

#: Metadata that must agree between the shards of one bank.
_SHARD_INVARIANTS = ("config", "approximant", "f_ref", "f_start", "domain", "reference_extrinsic", "num_samples", "seed")


def merge_banks(paths: Sequence[str | Path], out: str | Path, progress: bool = True) -> BankSummary:
    """Merge the complete set of shards of one bank (any order) into ``out``, uncompressed.

    The shards must come from the same config and seed, with LALSimulation of the same version;
    the result equals the bank generated without sharding. Compress it afterwards with
    :func:`compress_bank` (``dingo_build_svd``).
    """
    if not paths:
        raise DataError("no shard files given")
    out = check_writable(out)
    for p in paths:
        if out.exists() and Path(p).exists() and os.path.samefile(out, p):
            raise DataError(f"the output {out} is also an input ({p}); choose another --out")
    banks = [load_bank(p) for p in paths]
    ref = banks[0]
    for bank in banks:
        if bank.svd is not None:
            raise DataError(f"{bank.path} is SVD-compressed; merge uncompressed shards, then run dingo_build_svd")
        if bank.metadata.get("shard") is None:
            raise DataError(f"{bank.path} is not a shard (it was generated without --shard)")
        for key in _SHARD_INVARIANTS:
            if bank.metadata.get(key) != ref.metadata.get(key):
                raise DataError(f"{bank.path} and {ref.path} are not shards of one bank: their {key} differs")
        for lib in ("lal", "lalsimulation"):
            a, b = bank.metadata["versions"].get(lib), ref.metadata["versions"].get(lib)
            if a != b:
                raise DataError(f"{bank.path} was made with {lib} {a}, {ref.path} with {b}")
    count = ref.metadata["shard"]["count"]
    by_index: dict[int, WaveformBank] = {}
    for bank in banks:
        shard = bank.metadata["shard"]
        if shard["count"] != count:
            raise DataError(f"{bank.path} is shard {shard['index']}/{shard['count']}, others are of {count}")
        if shard["index"] in by_index:
            raise DataError(f"shard {shard['index']}/{count} given twice: {by_index[shard['index']].path} and {bank.path}")
        by_index[shard["index"]] = bank
    missing = sorted(set(range(1, count + 1)) - set(by_index))
    if missing:
        raise DataError(f"incomplete set of shards: missing shard(s) {', '.join(f'{i}/{count}' for i in missing)}")
    ordered = [by_index[i] for i in range(1, count + 1)]

    metadata = {k: v for k, v in ref.metadata.items() if k not in ("shard", "failed", "svd")}
    metadata["shard"] = None
    metadata["failed"] = _merge_failures([b.metadata.get("failed") for b in ordered], ref.metadata["num_samples"])
    with contextlib.ExitStack() as stack:
        files = [stack.enter_context(open_h5(b.path, KIND)) for b in ordered]
        source = _RowSource([(f, np.arange(len(b))) for f, b in zip(files, ordered)])
        with atomic_write(out) as tmp:
            _write_bank(tmp, source, metadata, None, ref.chunk_size, progress)
    return BankSummary(out, len(source), FailureSummary(**metadata["failed"]) if metadata["failed"] else None)


def _merge_failures(summaries: list[dict | None], total: int) -> dict:
    count = sum(s["count"] for s in summaries if s)
    first = next((s for s in summaries if s and s["count"]), None)
    merged = FailureSummary(count=count, total=total)
    if first is not None:
        merged.first_parameters = first["first_parameters"]
        merged.first_error = first["first_error"]
        merged.first_index = first["first_index"]
    return merged.to_dict()


# --- reading ------------------------------------------------------------------------------

class WaveformBank:
    """A waveform bank file, read lazily: metadata, parameters and the SVD basis on load,
    waveforms on access (``read_chunk`` for bounded memory, ``h_plus``/``h_cross`` for all).

    Waveforms are complex64 (N, len(frequencies)) at luminosity_distance 100 Mpc and
    geocent_time 0, zero outside [f_min, f_max]; decompressed if the bank is SVD-compressed.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        with open_h5(self.path, KIND) as f:
            try:
                self._load(f)
            except (KeyError, OSError, ValueError, TypeError, json.JSONDecodeError) as e:
                raise FileFormatError(f"{self.path} is not a complete waveform bank: {e}") from None

    def _load(self, f: h5py.File) -> None:
        metadata = read_json_attr(f, "metadata")
        if not isinstance(metadata, dict) or "domain" not in metadata:
            raise FileFormatError(f"{self.path} is not a complete waveform bank: metadata missing")
        if "progress" in f:
            raise FileFormatError(f"{self.path} is an unfinished bank (generation did not complete)")
        self.metadata = metadata
        self.domain = FrequencyDomain.from_dict(metadata["domain"])
        self.parameters = {k: f["parameters"][k][()].astype(np.float64) for k in f["parameters"]}
        self.sample_index = f["sample_index"][()]
        n = len(self.sample_index)
        for k, v in self.parameters.items():
            if v.shape != (n,):
                raise FileFormatError(f"{self.path}: parameter {k} has shape {v.shape}, expected ({n},)")
        self.svd: SVDBasis | None = None
        if "coefficients" in f:
            self.svd = SVDBasis.read(f["svd"], self.domain)
            expected, group = (n, self.svd.size), "coefficients"
        elif "waveforms" in f:
            expected, group = (n, len(self.domain)), "waveforms"
        else:
            raise FileFormatError(f"{self.path} holds neither waveforms nor SVD coefficients")
        for pol in POLARIZATIONS:
            shape = f[group][pol].shape
            if shape != expected:
                raise FileFormatError(f"{self.path}: {group}/{pol} has shape {shape}, expected {expected}")
        self._group = group

    def __len__(self) -> int:
        return len(self.sample_index)

    def __repr__(self) -> str:
        comp = f"SVD n={self.svd.size}" if self.svd is not None else "uncompressed"
        return f"WaveformBank({str(self.path)!r}, N={len(self)}, {self.approximant}, {comp})"

    @property
    def approximant(self) -> str:
        return self.metadata["approximant"]

    @property
    def f_ref(self) -> float:
        return float(self.metadata["f_ref"])

    @property
    def frequencies(self) -> np.ndarray:
        """Frequency grid 0..f_max [Hz]."""
        return self.domain.frequencies

    @property
    def chunk_size(self) -> int:
        return int(self.metadata.get("config", {}).get("chunk_size", 64))

    @property
    def compressed(self) -> bool:
        return self.svd is not None

    def _read(self, group: str, pol: str, start: int, stop: int) -> np.ndarray:
        if pol not in POLARIZATIONS:
            raise ValueError(f"polarization must be one of {POLARIZATIONS}, got {pol!r}")
        with open_h5(self.path, KIND) as f:
            try:
                return f[group][pol][start:stop]
            except (OSError, KeyError) as e:
                raise FileFormatError(f"cannot read {group}/{pol} from {self.path}: file is corrupt ({e})") from None

    def coefficients(self, polarization: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """SVD coefficients (rows, n) complex64 of a compressed bank, without decompressing."""
        if self.svd is None:
            raise DataError(f"{self.path} is not SVD-compressed; run dingo_build_svd on it")
        return self._read("coefficients", polarization, start, len(self) if stop is None else stop)

    def read_chunk(self, start: int, stop: int) -> dict[str, np.ndarray]:
        """{"h_plus", "h_cross"}: waveforms of rows [start, stop), complex64 (rows, n_freq)."""
        out = {}
        for pol in POLARIZATIONS:
            data = self._read(self._group, pol, start, stop)
            out[pol] = data if self.svd is None else self.svd.decompress(data).astype(np.complex64)
        return out

    def iter_chunks(self, size: int = 1024) -> Iterator[tuple[int, int, dict[str, np.ndarray]]]:
        """(start, stop, read_chunk(start, stop)) over the whole bank."""
        for a in range(0, len(self), size):
            b = min(a + size, len(self))
            yield a, b, self.read_chunk(a, b)

    @functools.cached_property
    def h_plus(self) -> np.ndarray:
        """All h_plus, complex64 (N, n_freq); for large banks prefer read_chunk or coefficients."""
        return self._all("h_plus")

    @functools.cached_property
    def h_cross(self) -> np.ndarray:
        """All h_cross, complex64 (N, n_freq)."""
        return self._all("h_cross")

    def _all(self, pol: str) -> np.ndarray:
        if self.svd is None:
            return self._read("waveforms", pol, 0, len(self))
        out = np.empty((len(self), len(self.domain)), dtype=np.complex64)
        for a in range(0, len(self), 4096):
            b = min(a + 4096, len(self))
            out[a:b] = self.svd.decompress(self._read("coefficients", pol, a, b))
        return out


def load_bank(path: str | Path) -> WaveformBank:
    """Open the waveform bank at ``path``; FileFormatError if missing, corrupt, or not a bank."""
    return WaveformBank(path)


def describe_bank(f: h5py.File) -> list[tuple[str, str]]:
    """Human-readable summary lines (key, value) of an open bank file, for dingo_ls."""
    md = read_json_attr(f, "metadata", {}) or {}
    n = len(f["sample_index"]) if "sample_index" in f else "?"
    d = md.get("domain", {})
    lines = [
        ("waveforms", str(n)),
        ("approximant", str(md.get("approximant"))),
        ("domain", f"{d.get('f_min')}-{d.get('f_max')} Hz, delta_f = {d.get('delta_f')} Hz "
                   f"({1 / d['delta_f']:g} s)" if d.get("delta_f") else "?"),
        ("f_ref", f"{md.get('f_ref')} Hz (waveforms start at {md.get('f_start')} Hz)"),
        ("reference extrinsic", json.dumps(md.get("reference_extrinsic"))),
        ("seed", f"{md.get('seed')} (draw of {md.get('num_samples')} samples)"),
    ]
    if "progress" in f:
        done = f["progress/chunk_done"][()]
        lines.append(("status", f"UNFINISHED generation run: {int(done.sum())} of {len(done)} chunks done "
                                "(continue it with dingo_generate_dataset ... --resume)"))
    shard = md.get("shard")
    if shard:
        lines.append(("shard", f"{shard['index']}/{shard['count']} (rows {shard['start']}..{shard['stop']} of the draw)"))
    prior = (md.get("config") or {}).get("prior") or {}
    for key, value in prior.items():
        lines.append((f"prior.{key}", str(value)))
    failed = md.get("failed") or {}
    if failed.get("count"):
        lines.append(("failed (excluded)", str(FailureSummary(**failed))))
    svd = md.get("svd")
    if svd:
        mm = svd["mismatch"]
        lines.append(("compression", f"SVD, {svd['size']} basis vectors from {svd['num_training_samples']} "
                                     f"training waveforms, whitened by {svd['whiten']}"))
        a = mm["all"]
        lines.append(("mismatch", f"{mm['num']} held-out waveforms ({mm['asd']}-weighted): p50 {a['p50']:.2e}, "
                                  f"p90 {a['p90']:.2e}, p99 {a['p99']:.2e}, max {a['max']:.2e}"))
    else:
        lines.append(("compression", "none"))
    versions = md.get("versions") or {}
    lines.append(("versions", ", ".join(f"{k} {v}" for k, v in versions.items())))
    return lines
