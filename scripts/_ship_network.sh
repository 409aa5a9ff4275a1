#!/usr/bin/env bash
# Train CONFIG (starts, or resumes exactly after a kill) and copy its network, histories and config
# into data/networks/NAME. Called by the make_*_network.sh scripts from the repository root.
#   scripts/_ship_network.sh CONFIG NAME
set -euo pipefail
config=$1
name=$2
dingo_train "$config" --resume
run_dir=$(python3 -c "import sys, yaml, os; c = yaml.safe_load(open(sys.argv[1])); print(os.path.expanduser(c['output_dir']))" "$config")
case "$run_dir" in /*) ;; *) run_dir="$(dirname "$config")/$run_dir" ;; esac
mkdir -p "data/networks/$name"
for f in network.pt history.csv init_history.csv; do cp "$run_dir/$f" "data/networks/$name/$f"; done
cp "$run_dir/config.yaml" "data/networks/$name/train_config.yaml"
echo "$name network: data/networks/$name/network.pt (from $run_dir); data/networks/networks.json lists the shipped ones"
