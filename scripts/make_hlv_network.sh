#!/usr/bin/env bash
# Rebuild the shipped H1+L1+V1 network (data/networks/hlv/) from scratch on CPU: the default bank,
# the H1+L1+V1 ASD datasets, then dingo_train configs/train_cpu_hlv.yaml (docs/training.md).
# Every step skips what already exists, and training resumes after a kill (re-run the script).
# The run folder is the config's output_dir (~/.cache/dingo_gw/runs/train_cpu_hlv), outside the
# repository. Wall time on 2 cores: ~5 min for the inputs (bank shared with the default network),
# then the 36 epochs of configs/train_cpu_hlv.yaml (see data/networks/hlv/history.csv).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p out
scripts/_make_bank.sh configs/bank_default.yaml out/bank_default.h5
# V1 has two measured PSDs, fewer than the model's minimum of 3: the model (and its synthetic
# ASDs) covers H1 and L1; V1 noise comes from out/asd_dataset_hlv.h5 alone.
scripts/_make_noise_inputs.sh configs/asd_dataset_hlv.yaml out/asd_dataset_hlv.h5 \
    out/psd_model_hlv.h5 out/asd_synthetic_hlv_smooth.h5 out/asd_synthetic_hlv_welch.h5
config=configs/train_cpu_hlv.yaml
scripts/_ship_network.sh "$config" hlv
