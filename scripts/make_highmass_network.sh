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
[ -f out/bank_highmass.h5 ] || dingo_generate_dataset --config configs/bank_highmass.yaml \
    --out out/bank_highmass.h5 --workers "${WORKERS:-2}" --resume
config=configs/train_cpu_highmass.yaml
dingo_train "$config" --resume
run_dir=$(python3 -c "import sys, yaml, os; c = yaml.safe_load(open(sys.argv[1])); print(os.path.expanduser(c['output_dir']))" "$config")
mkdir -p data/networks/highmass
for f in network.pt history.csv init_history.csv; do cp "$run_dir/$f" "data/networks/highmass/$f"; done
cp "$run_dir/config.yaml" data/networks/highmass/train_config.yaml
echo "high-mass network: data/networks/highmass/network.pt (from $run_dir); list it in data/networks/networks.json"
