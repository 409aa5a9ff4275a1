"""dingo_generate_dataset --submit slurm|condor: the job files parse, chain the jobs correctly, and
running the commands they contain (shards, merge, SVD) gives the bank of a one-shot run, bit for bit."""

import os
import re
import shlex
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from dingo_gw.cli import build_svd, generate_dataset, merge_datasets
from dingo_gw.waveforms import load_bank

CONFIG = {
    "domain": {"f_min": 20.0, "f_max": 256.0, "delta_f": 0.25},
    "waveform": {"approximant": "IMRPhenomD", "f_ref": 20.0},
    "prior": {"chirp_mass": "bilby.gw.prior.UniformInComponentsChirpMass(minimum=20.0, maximum=40.0)",
              "mass_ratio": "bilby.gw.prior.UniformInComponentsMassRatio(minimum=0.3, maximum=1.0)",
              "chi_1": "bilby.gw.prior.AlignedSpin(a_prior=Uniform(0, 0.8), z_prior=Uniform(-1, 1))",
              "chi_2": "bilby.gw.prior.AlignedSpin(a_prior=Uniform(0, 0.8), z_prior=Uniform(-1, 1))",
              "theta_jn": "Sine(minimum=0.0, maximum=3.141592653589793)",
              "phase": "Uniform(minimum=0.0, maximum=6.283185307179586, boundary='periodic')"},
    "num_samples": 30,
    "seed": 5,
    "chunk_size": 8,
    "compression": {"svd": {"size": 8, "num_training_samples": 20, "num_validation_samples": 10}},
}

SCRIPTS = {"dingo_generate_dataset": generate_dataset.main, "dingo_merge_datasets": merge_datasets.main,
           "dingo_build_svd": build_svd.main}


@pytest.fixture(scope="module")
def config_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "bank.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    return path


@pytest.fixture(scope="module")
def one_shot(config_file, tmp_path_factory):
    """The SVD-compressed bank of CONFIG generated in one run."""
    out = tmp_path_factory.mktemp("one_shot") / "bank.h5"
    run(["dingo_generate_dataset", "--config", str(config_file), "--out", str(out), "--no-progress"])
    return out


def run(argv: list[str]) -> None:
    """Run a job's command line in this process (its program is one of our console scripts)."""
    program = Path(argv[0])
    assert program.name in SCRIPTS, argv[0]
    if program.is_absolute():  # the job files name the scripts of this environment
        assert program.is_file() and os.access(program, os.X_OK), program
    with pytest.raises(SystemExit) as exit_:
        SCRIPTS[program.name](argv[1:])
    assert exit_.value.code == 0, argv


def assert_same_bank(a_path, b_path):
    a, b = load_bank(a_path), load_bank(b_path)
    assert a.compressed and b.compressed
    for key in a.parameters:
        assert np.array_equal(a.parameters[key], b.parameters[key]), key
    assert np.array_equal(a.sample_index, b.sample_index)
    for pol in ("h_plus", "h_cross"):
        assert np.array_equal(a.coefficients(pol), b.coefficients(pol)), pol
    assert np.array_equal(a.svd.V, b.svd.V)
    a_meta, b_meta = dict(a.metadata), dict(b.metadata)
    assert a_meta.pop("svd") == b_meta.pop("svd")
    assert a_meta == b_meta


def sbatch_options(text: str) -> list[str]:
    return [line[len("#SBATCH "):] for line in text.splitlines() if line.startswith("#SBATCH ")]


def exec_line(text: str, task: int | None = None) -> list[str]:
    (line,) = [x for x in text.splitlines() if x.startswith("exec ")]
    if task is not None:
        line = line.replace("${SLURM_ARRAY_TASK_ID}", str(task))
    assert "$" not in line
    return shlex.split(line)[1:]


def test_slurm_files_chain_the_jobs_and_reproduce_the_one_shot_bank(config_file, one_shot, tmp_path):
    out = tmp_path / "final bank" / "bank.h5"  # a space: the scripts must quote paths
    jobs = tmp_path / "jobs dir"
    run(["dingo_generate_dataset", "--config", str(config_file), "--out", str(out), "--submit", "slurm",
         "--shards", "3", "--submit-dir", str(jobs), "--workers", "2", "--scheduler-option=--partition=cpu"])
    assert not out.exists()  # written, not run
    assert sorted(p.name for p in jobs.iterdir()) == ["logs", "merge.sbatch", "shards", "shards.sbatch",
                                                      "submit.sh", "svd.sbatch"]
    shards = (jobs / "shards.sbatch").read_text()
    options = sbatch_options(shards)
    assert "--array=1-3" in options and "--cpus-per-task=2" in options and "--partition=cpu" in options
    assert f"--output={jobs / 'logs'}/shard_%a.out" in options
    assert '--shard "${SLURM_ARRAY_TASK_ID}/3"' in shards
    for name in ("shards.sbatch", "merge.sbatch", "svd.sbatch", "submit.sh"):
        subprocess.run(["bash", "-n", str(jobs / name)], check=True)  # valid bash

    # submit.sh with a stand-in sbatch that records its arguments and prints job ids
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "sbatch").write_text('#!/bin/bash\necho "$@" >> "$SBATCH_LOG"\n'
                                 'n=$(wc -l < "$SBATCH_LOG")\necho "$((100 + n));cluster"\n')
    (fake / "sbatch").chmod(0o755)
    log = tmp_path / "sbatch.log"
    env = dict(os.environ, PATH=f"{fake}:{os.environ['PATH']}", SBATCH_LOG=str(log))
    proc = subprocess.run(["bash", str(jobs / "submit.sh")], env=env, capture_output=True, text=True, check=True)
    assert log.read_text().splitlines() == [
        "--parsable shards.sbatch",
        "--parsable --dependency=afterok:101 merge.sbatch",
        "--parsable --dependency=afterok:102 svd.sbatch",
    ]
    assert "shards 101" in proc.stdout and "svd 103" in proc.stdout

    # run what the jobs would run, array tasks in any order
    for task in (2, 3, 1):
        argv = exec_line(shards, task)
        assert argv[argv.index("--shard") + 1] == f"{task}/3" and "--resume" in argv
        run(argv)
    run(exec_line((jobs / "merge.sbatch").read_text()))
    run(exec_line((jobs / "svd.sbatch").read_text()))
    assert_same_bank(one_shot, out)


def condor_arguments(line: str) -> list[str]:
    """Parse HTCondor's new-style quoted arguments (single quotes group, '' is a quote)."""
    value = line.split("=", 1)[1].strip()
    assert value.startswith('"') and value.endswith('"')
    text, words, word, quoted, i = value[1:-1].replace('""', '"'), [], "", False, 0
    started = False
    while i < len(text):
        c = text[i]
        if c == "'":
            if quoted and text[i + 1:i + 2] == "'":
                word += "'"
                i += 2
                continue
            quoted, started = not quoted, True
        elif c == " " and not quoted:
            if started:
                words.append(word)
            word, started = "", False
        else:
            word += c
            started = True
        i += 1
    if started:
        words.append(word)
    return words


def submit_file(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            out[key.strip()] = line
    return out


def test_condor_dag_lists_the_jobs_and_edges_and_reproduces_the_one_shot_bank(config_file, one_shot, tmp_path):
    out = tmp_path / "bank.h5"
    run(["dingo_generate_dataset", "--config", str(config_file), "--out", str(out), "--submit", "condor",
         "--shards", "3", "--scheduler-option", "request_memory = 2GB"])
    jobs = tmp_path / "bank_jobs"  # default submit folder
    dag = (jobs / "bank.dag").read_text().splitlines()
    nodes = dict(re.fullmatch(r"JOB (\S+) (\S+)", x).groups() for x in dag if x.startswith("JOB "))
    assert nodes == {"shard_1": "shard.sub", "shard_2": "shard.sub", "shard_3": "shard.sub",
                     "merge": "merge.sub", "svd": "svd.sub"}
    variables = {m.group(1): m.group(2) for m in (re.fullmatch(r'VARS (\S+) shard="(\d+)"', x) for x in dag) if m}
    assert variables == {"shard_1": "1", "shard_2": "2", "shard_3": "3"}
    edges = [x for x in dag if x.startswith("PARENT ")]
    assert edges == ["PARENT shard_1 shard_2 shard_3 CHILD merge", "PARENT merge CHILD svd"]

    shard_sub = submit_file(jobs / "shard.sub")
    assert "request_memory" in shard_sub and (jobs / "shard.sub").read_text().rstrip().endswith("queue")
    executable = shard_sub["executable"].split("=", 1)[1].strip()
    for node, index in variables.items():
        args = [a.replace("$(shard)", index) for a in condor_arguments(shard_sub["arguments"])]
        run([executable, *args])
    for node in ("merge", "svd"):
        sub = submit_file(jobs / nodes[node])
        run([sub["executable"].split("=", 1)[1].strip(), *condor_arguments(sub["arguments"])])
    assert_same_bank(one_shot, out)


@pytest.mark.parametrize("extra, message", [
    (["--submit", "slurm"], "--submit needs --shards N"),
    (["--submit", "slurm", "--shards", "31"], "cannot split 30 samples into 31 shards"),
    (["--submit", "condor", "--shards", "2", "--shard", "1/2"], "--shard I/N is for a single shard job"),
    (["--submit", "slurm", "--shards", "2", "--dask", "local"], "--submit and --dask exclude each other"),
    (["--shards", "2"], "--shards needs --submit or --dask"),
    (["--dask", "local:0"], "local:N needs a positive number of workers"),
])
def test_bad_cluster_options_are_one_line_errors(config_file, tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) as exit_:
        generate_dataset.main(["--config", str(config_file), "--out", str(tmp_path / "x" / "bank.h5"), *extra])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
    assert not (tmp_path / "x").exists()
