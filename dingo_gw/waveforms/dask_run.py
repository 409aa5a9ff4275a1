"""Bank shards as Dask distributed tasks (``dingo_generate_dataset --dask ADDRESS|local[:N]``).

Each task generates one shard (:func:`dingo_gw.waveforms.bank.generate_bank` with
``shard=(I, N)``, resumable) and writes it to a shard file; the client then merges the shards
and, if the config asks for it, SVD-compresses the merged bank. The result is the bank a single
run of the same config and seed produces. The shard folder must be reachable by every worker
under the same path (a shared file system), and the workers need dingo_gw installed.

The config travels to the workers as its JSON dict (no pickled objects of ours). Shards whose
file is already complete (an earlier, interrupted run) are not generated again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
from pathlib import Path

from dingo_gw.errors import ConfigError, DataError, DingoError, FileFormatError
from dingo_gw.io.atomic import check_writable
from dingo_gw.waveforms.bank import BankSummary, compress_bank, load_bank, merge_banks, shard_range
from dingo_gw.waveforms.config import BankConfig

logger = logging.getLogger(__name__)

#: One shard at a time per worker process: the parameter draw seeds bilby's process-wide random
#: generator, so two shards drawn at once in threads of one worker would corrupt each other.
_SHARD_LOCK = threading.Lock()


def parse_address(address: str) -> tuple[str, int | None]:
    """("local", N or None) for ``local`` / ``local:N``, else ("remote", None); ConfigError if malformed."""
    if address == "local":
        return "local", None
    if address.startswith("local:"):
        text = address.split(":", 1)[1]
        if not text.isdigit() or int(text) < 1:
            raise ConfigError(f"--dask local:N needs a positive number of workers N, got {address!r}")
        return "local", int(text)
    if not address.strip():
        raise ConfigError("--dask needs a scheduler address (e.g. tcp://10.0.0.1:8786) or local[:N]")
    return "remote", None


@contextlib.contextmanager
def dask_client(address: str):
    """A ``distributed.Client``: a new LocalCluster of N single-threaded worker processes for
    ``local[:N]`` (default: one per core), else connected to the scheduler at ``address``.
    Closed (and the local cluster stopped) on exit."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ConfigError("--dask needs the dask distributed package: pip install 'dask[distributed]'") from None
    kind, n = parse_address(address)
    if kind == "local":
        n = n or os.cpu_count() or 1
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                Client(cluster) as client:
            yield client
        return
    try:
        client = Client(address, timeout="30s")
    except (OSError, TimeoutError, ValueError) as e:
        raise DataError(f"cannot connect to the Dask scheduler at {address}: {e}") from None
    with client:
        yield client


def num_worker_threads(client) -> int:
    """Threads over all workers of the cluster (at least 1)."""
    return max(1, sum(int(w.get("nthreads", 1)) for w in client.scheduler_info()["workers"].values()))


def run_shard(config: dict, path: str, index: int, count: int, workers: int = 1) -> dict:
    """Dask task: generate shard ``index``/``count`` of the bank ``config`` (its JSON dict) into
    ``path``, resuming an interrupted attempt. Returns {"path", "num_waveforms"}.

    Shards in threads of one worker run one after the other (see ``_SHARD_LOCK``): give workers
    one thread each and parallelise within a shard with ``workers`` processes instead."""
    from dingo_gw.config import parse_config
    from dingo_gw.waveforms.bank import generate_bank

    cfg = parse_config(config, BankConfig, source=f"bank config of shard {index}/{count}")
    with _SHARD_LOCK:
        summary = generate_bank(cfg, path, workers=workers, shard=(index, count), resume=True, progress=False)
    return {"path": str(summary.path), "num_waveforms": summary.num_waveforms}


def _complete_shard(path: Path, config: BankConfig, index: int, count: int) -> bool:
    """True if ``path`` is a finished shard index/count of this config (from an earlier run)."""
    if not path.is_file():
        return False
    try:
        md = load_bank(path).metadata
    except FileFormatError:
        return False
    shard = md.get("shard") or {}
    return (shard.get("index"), shard.get("count")) == (index, count) and \
        md.get("seed") == config.seed and md.get("num_samples") == config.num_samples


def generate_bank_dask(config: BankConfig, out: str | Path, client, num_shards: int | None = None,
                       shard_dir: str | Path | None = None, workers_per_shard: int = 1, progress: bool = True,
                       keep_shards: bool = False) -> BankSummary:
    """Generate the bank of ``config`` into ``out`` with its shards run as tasks on ``client``
    (a ``distributed.Client``).

    ``num_shards`` (default: the cluster's worker threads) shards are written to ``shard_dir``
    (default ``<out folder>/.<out stem>_shards``, which must be shared with the workers), merged
    by the client, SVD-compressed if ``config.compression.svd`` is set, and moved to ``out``
    atomically; the shard files are then removed unless ``keep_shards``.
    """
    from distributed import as_completed
    from tqdm.auto import tqdm

    out = check_writable(Path(out).resolve())
    count = num_shards or num_worker_threads(client)
    shard_range(config.num_samples, count, count)  # ConfigError if there are more shards than samples
    folder = Path(shard_dir).resolve() if shard_dir is not None else out.parent / f".{out.stem}_shards"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create the shard folder {folder}: {e.strerror or e}") from None
    paths = [folder / f"{out.stem}_shard_{i}_of_{count}.h5" for i in range(1, count + 1)]
    todo = [i for i in range(1, count + 1) if not _complete_shard(paths[i - 1], config, i, count)]
    if len(todo) < count:
        logger.info("%d of %d shards already complete in %s", count - len(todo), count, folder)
    payload = config.model_dump(mode="json")
    futures = {client.submit(run_shard, payload, str(paths[i - 1]), i, count, workers_per_shard, pure=False,
                             key=f"dingo-bank-shard-{i}-of-{count}-{out.stem}"): i for i in todo}
    with tqdm(total=count, initial=count - len(todo), unit="shard", disable=not progress,
              desc=f"{out.name} shards on Dask") as bar:
        try:
            for future in as_completed(futures):
                i = futures[future]
                try:
                    future.result()
                except DingoError as e:
                    raise type(e)(f"shard {i}/{count}: {e}") from None
                bar.update(1)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    merged = out.with_name(f".{out.name}.merged")
    try:
        merge = merge_banks(paths, merged, progress=progress)
        svd = None
        if config.svd is not None:
            svd = compress_bank(merged, config.svd, progress=progress).svd
        summary = BankSummary(out, merge.num_waveforms, merge.failures, svd)
        os.replace(merged, out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            merged.unlink()
    if not keep_shards:
        shutil.rmtree(folder, ignore_errors=True)
    return summary
