#!/usr/bin/env bash
# Reproduces the real detector's shipped artefacts, in order (each step writes a run folder; --ship also writes
# the package's copy). About 75 minutes on a 2-core x86 machine; run from the repository root after ./agra.sh set-up.
#   1. slim levels: rank channels, least-squares refit, distil 45 minutes (1 thread) from the full configuration
#   2. cost tables of this machine at 1 and 2 torch threads
#   3. agreement table (confident agreement, the package's accuracy measure, with the strict one beside it; in and out
#      of domain), 3 rounds of active measurement, accuracy model, plots, annotated frames; then the calibration of
#      the robot's shadow agreement (per-frame confident agreement) onto the table
#   4. the AGRA policy and the a2c and bandit baselines retrained in the simulator on these tables
set -euo pipefail
cd "$(dirname "$0")/.."
A=.venv/bin/agra-ros
$A distill-detector --minutes 45 --threads 1 --seed 0 --out runs/distill_main --ship
$A profile-ssd --threads 1 --ship
$A profile-ssd --threads 2 --ship
$A evaluate-ssd --ship
$A calibrate-agreement --ship
$A train-policy --ship --fresh
$A train-policy --algorithm a2c --ship
$A train-policy --algorithm bandit --ship
