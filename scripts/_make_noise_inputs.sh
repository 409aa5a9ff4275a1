#!/usr/bin/env bash
# The noise inputs of a network, each step skipped when its file exists: the ASD dataset of
# ASD_CONFIG, the PSD model fitted to it (with its plot), and 3000 synthetic ASDs of that model
# twice: smooth (seed 1) and like 6-segment Welch estimates (seed 2). Detectors with fewer than
# three ASDs are left out of the model (and so of the synthetic files), with a warning.
# Called by the make_*_network.sh scripts from the repository root.
#   scripts/_make_noise_inputs.sh ASD_CONFIG DATASET MODEL SMOOTH WELCH
set -euo pipefail
asd_config=$1 dataset=$2 model=$3 smooth=$4 welch=$5
[ -f "$dataset" ] || dingo_generate_asd_dataset --config "$asd_config" --out "$dataset"
[ -f "$model" ] || dingo_fit_psd_model --asd-dataset "$dataset" --out "$model" --plot
[ -f "$smooth" ] || dingo_generate_synthetic_asd_dataset \
    --model "$model" --num-samples 3000 --out "$smooth" --seed 1
[ -f "$welch" ] || dingo_generate_synthetic_asd_dataset \
    --model "$model" --num-samples 3000 --out "$welch" --seed 2 --welch-segments 6
