#!/usr/bin/env bash
# The waveform bank of CONFIG at OUT unless it exists (resumable: a killed run goes on where it stopped).
# Called by the make_*_network.sh scripts from the repository root; WORKERS sets the processes (default 2).
#   scripts/_make_bank.sh CONFIG OUT
set -euo pipefail
[ -f "$2" ] || dingo_generate_dataset --config "$1" --out "$2" --workers "${WORKERS:-2}" --resume
