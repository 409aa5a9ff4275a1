#!/usr/bin/env bash
# Rebuild the shipped low-mass network (data/networks/lowmass/) from scratch on CPU: its bank
# (configs/bank_lowmass.yaml, 8 s segments), its ASD datasets (configs/asd_dataset_lowmass.yaml and
# the PSD model's synthetic ASDs), then dingo_train configs/train_cpu_lowmass.yaml.
# Every step skips what already exists, and training resumes after a kill (re-run the script).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p out
scripts/_make_bank.sh configs/bank_lowmass.yaml out/bank_lowmass.h5
scripts/_make_noise_inputs.sh configs/asd_dataset_lowmass.yaml out/asd_dataset_lowmass.h5 \
    out/psd_model_lowmass.h5 out/asd_synthetic_lowmass_smooth.h5 out/asd_synthetic_lowmass_welch.h5
scripts/_ship_network.sh configs/train_cpu_lowmass.yaml lowmass
