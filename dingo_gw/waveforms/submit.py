"""Job files that generate a waveform bank on a batch scheduler: an array of shards, then the
merge, then the SVD compression (``dingo_generate_dataset --submit slurm|condor``).

The files are written, not submitted. Every job runs one of the project's console scripts:

    shard I of N   dingo_generate_dataset --config C --out <shards>/<bank>_shard_I_of_N.h5 --shard I/N --resume
    merge          dingo_merge_datasets --out <bank>.h5 <all N shard files>
    svd            dingo_build_svd --bank <bank>.h5          (only if the config has compression.svd)

A shard job that is killed and restarted continues where it stopped (``--resume``). The merged
bank is identical to the bank generated in one run (same config and seed); the shards stay in
``<submit_dir>/shards`` and can be deleted once the merge has succeeded.

Slurm: ``shards.sbatch`` (``--array=1-N``, shard ``${SLURM_ARRAY_TASK_ID}/N``), ``merge.sbatch``,
``svd.sbatch`` and ``submit.sh``, which submits them chained with ``--dependency=afterok``
(the merge starts when every array task has succeeded). HTCondor: ``shard.sub``, ``merge.sub``,
``svd.sub`` and ``bank.dag`` (N shard nodes, PARENT shards CHILD merge, PARENT merge CHILD svd);
submit with ``condor_submit_dag bank.dag``. Paths in the files are absolute: the submit folder,
the config (and its prior file) and the output folder must be on a file system the nodes share.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from dingo_gw.errors import ConfigError, DataError
from dingo_gw.io.atomic import atomic_write

SCHEDULERS = ("slurm", "condor")

#: Console scripts the jobs run (declared in pyproject.toml).
GENERATE, MERGE, BUILD_SVD = "dingo_generate_dataset", "dingo_merge_datasets", "dingo_build_svd"


def console_script(name: str) -> str:
    """Absolute path of a console script next to this Python (the same environment), else the bare name."""
    path = Path(sys.executable).parent / name
    return str(path) if path.is_file() else name


@dataclass
class BankJobs:
    """A sharded bank generation: ``num_shards`` shard jobs of ``workers`` processes each.

    ``config``: the bank config file; ``out``: the final bank; ``overrides``: extra options passed
    to every shard job (e.g. ``["--num-samples", "100000", "--seed", "3"]``); ``num_samples``:
    the size of the draw (to check the shard count); ``compress``: run dingo_build_svd after the
    merge (the config has compression.svd); ``options``: extra scheduler lines (Slurm: ``#SBATCH``
    options such as ``--partition=cpu``; HTCondor: submit-file commands such as
    ``request_memory = 4GB``), added to every job.
    """

    config: Path
    out: Path
    num_shards: int
    submit_dir: Path
    num_samples: int
    compress: bool
    workers: int = 1
    overrides: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.config, self.out, self.submit_dir = (Path(p).expanduser().resolve() for p in
                                                  (self.config, self.out, self.submit_dir))
        if self.num_shards < 1:
            raise ConfigError(f"--shards must be >= 1, got {self.num_shards}")
        if self.num_shards > self.num_samples:
            raise ConfigError(f"cannot split {self.num_samples} samples into {self.num_shards} shards")

    @property
    def shard_dir(self) -> Path:
        return self.submit_dir / "shards"

    @property
    def log_dir(self) -> Path:
        return self.submit_dir / "logs"

    def shard_path(self, index: int | str) -> Path:
        """Shard file of shard ``index`` (1-based; a string for a scheduler variable)."""
        return self.shard_dir / f"{self.out.stem}_shard_{index}_of_{self.num_shards}.h5"

    def shard_args(self, index: int | str) -> list[str]:
        """Arguments of dingo_generate_dataset for shard ``index``."""
        return ["--config", str(self.config), "--out", str(self.shard_path(index)),
                "--shard", f"{index}/{self.num_shards}", "--workers", str(self.workers), *self.overrides,
                "--resume", "--no-progress"]

    def merge_args(self) -> list[str]:
        return ["--out", str(self.out), *(str(self.shard_path(i)) for i in range(1, self.num_shards + 1)),
                "--no-progress"]

    def svd_args(self) -> list[str]:
        return ["--bank", str(self.out), "--no-progress"]

    def prepare(self) -> None:
        """Create the submit, shard, log and output folders; DataError if impossible."""
        for folder in (self.submit_dir, self.shard_dir, self.log_dir, self.out.parent):
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise DataError(f"cannot create folder {folder}: {e.strerror or e}") from None


# --- Slurm ---------------------------------------------------------------------------------

_SLURM_TASK = "${SLURM_ARRAY_TASK_ID}"


def _bash_command(program: str, args: list[str]) -> str:
    """A bash command line; the Slurm array index stays expandable (double quotes)."""
    words = []
    for a in [program, *args]:
        if _SLURM_TASK in a:
            words.append('"' + a.replace("\\", "\\\\").replace('"', '\\"').replace("`", "\\`") + '"')
        else:
            words.append(shlex.quote(a))
    return " ".join(words)


def _sbatch(jobs: BankJobs, name: str, log: str, command: str, cpus: int, array: str | None = None) -> str:
    lines = ["#!/bin/bash", f"#SBATCH --job-name={name}"]
    if array:
        lines.append(f"#SBATCH --array={array}")
    lines += [f"#SBATCH --cpus-per-task={cpus}", "#SBATCH --ntasks=1",
              f"#SBATCH --output={jobs.log_dir / log}.out", f"#SBATCH --error={jobs.log_dir / log}.err"]
    lines += [f"#SBATCH {opt}" for opt in jobs.options]
    lines += ["set -euo pipefail", "export OMP_NUM_THREADS=1", f"exec {command}", ""]
    return "\n".join(lines)


def write_slurm(jobs: BankJobs) -> dict[str, Path]:
    """Write shards.sbatch, merge.sbatch, svd.sbatch (if compressing) and submit.sh; return their paths."""
    jobs.prepare()
    stem = jobs.out.stem
    files = {
        "shards": _sbatch(jobs, f"{stem}_shards", "shard_%a", _bash_command(console_script(GENERATE),
                          jobs.shard_args(_SLURM_TASK)), jobs.workers, array=f"1-{jobs.num_shards}"),
        "merge": _sbatch(jobs, f"{stem}_merge", "merge", _bash_command(console_script(MERGE), jobs.merge_args()), 1),
    }
    if jobs.compress:
        files["svd"] = _sbatch(jobs, f"{stem}_svd", "svd", _bash_command(console_script(BUILD_SVD), jobs.svd_args()), 1)
    submit = ["#!/bin/bash", "# Submits the shard array, then the merge and the SVD, each after the previous "
              "succeeded.", "set -euo pipefail", 'cd "$(dirname "$0")"',
              "shards=$(sbatch --parsable shards.sbatch)", 'shards=${shards%%;*}',
              'merge=$(sbatch --parsable --dependency=afterok:"$shards" merge.sbatch)', 'merge=${merge%%;*}']
    if jobs.compress:
        submit += ['svd=$(sbatch --parsable --dependency=afterok:"$merge" svd.sbatch)', 'svd=${svd%%;*}',
                   'echo "submitted: shards $shards (array), merge $merge, svd $svd"']
    else:
        submit.append('echo "submitted: shards $shards (array), merge $merge"')
    paths = {}
    for key, text in files.items():
        paths[key] = _write(jobs.submit_dir / f"{key}.sbatch", text)
    paths["submit"] = _write(jobs.submit_dir / "submit.sh", "\n".join(submit) + "\n", executable=True)
    return paths


# --- HTCondor ------------------------------------------------------------------------------

def _condor_arguments(args: list[str]) -> str:
    """HTCondor's quoted ``arguments`` syntax: the whole list in double quotes, an argument with
    spaces in single quotes (a single quote doubled, a double quote doubled)."""
    words = []
    for a in args:
        a = a.replace('"', '""')
        if any(c.isspace() for c in a) or "'" in a or not a:
            a = "'" + a.replace("'", "''") + "'"
        words.append(a)
    return '"' + " ".join(words) + '"'


def _submit_file(jobs: BankJobs, executable: str, args: list[str], log: str, cpus: int) -> str:
    lines = [
        "universe = vanilla",
        f"executable = {executable}",
        f"arguments = {_condor_arguments(args)}",
        f"request_cpus = {cpus}",
        "getenv = True",
        'environment = "OMP_NUM_THREADS=1"',
        f"output = {jobs.log_dir / log}.out",
        f"error = {jobs.log_dir / log}.err",
        f"log = {jobs.log_dir / 'dag.log'}",
        *jobs.options,
        "queue",
        "",
    ]
    return "\n".join(lines)


def write_condor(jobs: BankJobs) -> dict[str, Path]:
    """Write shard.sub, merge.sub, svd.sub (if compressing) and bank.dag; return their paths."""
    jobs.prepare()
    subs = {
        "shard": _submit_file(jobs, console_script(GENERATE), jobs.shard_args("$(shard)"), "shard_$(shard)",
                              jobs.workers),
        "merge": _submit_file(jobs, console_script(MERGE), jobs.merge_args(), "merge", 1),
    }
    if jobs.compress:
        subs["svd"] = _submit_file(jobs, console_script(BUILD_SVD), jobs.svd_args(), "svd", 1)
    names = [f"shard_{i}" for i in range(1, jobs.num_shards + 1)]
    dag = [f"# {jobs.out.name}: {jobs.num_shards} shards, then merge{', then svd' if jobs.compress else ''}. "
           "Submit with: condor_submit_dag bank.dag"]
    for i, name in enumerate(names, 1):
        dag += [f"JOB {name} shard.sub", f'VARS {name} shard="{i}"', f"RETRY {name} 2"]
    dag.append("JOB merge merge.sub")
    dag.append(f"PARENT {' '.join(names)} CHILD merge")
    if jobs.compress:
        dag += ["JOB svd svd.sub", "PARENT merge CHILD svd"]
    paths = {key: _write(jobs.submit_dir / f"{key}.sub", text) for key, text in subs.items()}
    paths["dag"] = _write(jobs.submit_dir / "bank.dag", "\n".join(dag) + "\n")
    return paths


def write_jobs(jobs: BankJobs, scheduler: str) -> dict[str, Path]:
    """Write the job files of ``scheduler`` (slurm or condor) into ``jobs.submit_dir``."""
    if scheduler == "slurm":
        return write_slurm(jobs)
    if scheduler == "condor":
        return write_condor(jobs)
    raise ConfigError(f"unknown scheduler {scheduler!r}; use one of {', '.join(SCHEDULERS)}")


def submit_hint(scheduler: str, paths: dict[str, Path]) -> str:
    """The command that submits the written files."""
    if scheduler == "slurm":
        return f"bash {paths['submit']}"
    return f"cd {paths['dag'].parent} && condor_submit_dag {paths['dag'].name}"


def _write(path: Path, text: str, executable: bool = False) -> Path:
    with atomic_write(path) as tmp:
        tmp.write_text(text)
        if executable:
            tmp.chmod(0o755)
    return path
