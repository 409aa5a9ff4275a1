#!/usr/bin/env bash
# Rebuild the shipped high-mass network (data/networks/highmass/) from scratch on CPU: its bank
# (configs/bank_highmass.yaml), the H1+L1+V1 ASD datasets (scripts/make_hlv_network.sh makes them,
# and trains the H1+L1+V1 network too unless SKIP_HLV=1), then dingo_train configs/train_cpu_highmass.yaml.
# Every step skips what already exists, and training resumes after a kill (re-run the script).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p out
if [ ! -f out/asd_synthetic_hlv_welch.h5 ]; then
    [ "${SKIP_HLV:-0}" = 1 ] && { echo "error: H1+L1+V1 ASD datasets missing: run scripts/make_hlv_network.sh" >&2; exit 2; }
    scripts/make_hlv_network.sh
fi
scripts/_make_bank.sh configs/bank_highmass.yaml out/bank_highmass.h5
config=configs/train_cpu_highmass.yaml
scripts/_ship_network.sh "$config" highmass
