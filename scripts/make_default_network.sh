#!/usr/bin/env bash
# Rebuild the shipped default network (data/networks/default/) from scratch on CPU:
# waveform bank, real + synthetic ASD datasets, then dingo_train configs/train_cpu.yaml.
# Every step skips what already exists, and training resumes after a kill (re-run the script).
# The training run lives outside the repository, in the config's output_dir
# (~/.cache/dingo_gw/runs/train_cpu; RUN_DIR overrides it), so that it can go on across sessions:
# append stages to configs/train_cpu.yaml and re-run the script to extend a finished schedule
# (docs/training.md, "Extending a run").
# Wall time on 2 cores: ~5 min for the inputs, then max_wall_time of configs/train_cpu.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p out
scripts/_make_bank.sh configs/bank_default.yaml out/bank_default.h5
scripts/_make_noise_inputs.sh configs/asd_dataset_default.yaml out/asd_dataset_default.h5 \
    out/psd_model_default.h5 out/asd_synthetic_smooth.h5 out/asd_synthetic_welch.h5
config=configs/train_cpu.yaml
if [ -n "${RUN_DIR:-}" ]; then
    config=out/train_cpu_run.yaml
    sed "s|^output_dir:.*|output_dir: ${RUN_DIR}|; s|\.\./out/|$(pwd)/out/|g" configs/train_cpu.yaml > "$config"
fi
scripts/_ship_network.sh "$config" default
