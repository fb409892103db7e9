#!/usr/bin/env bash
# Every method x seed of bench/search_quality.py at once, each with the same wall-clock budget
# (new trials start for MINUTES minutes), then the report. For a machine with many cores (the
# runs share it evenly); extra arguments go to every run (e.g. --set trainer=gpu).
#   bench/search_quality_all.sh DATASET MINUTES OUT "SEEDS" "METHODS" [--set KEY=VALUE ...]
#   bench/search_quality_all.sh fashion 4.5 runs/bench-fashion "0 1 2" \
#       "mobo mobo-no-pruning random random-no-pruning optuna-gp optuna-tpe-median" --set trainer=gpu
set -u
dataset=$1 minutes=$2 out=$3 seeds=$4 methods=$5
shift 5
python=${PYTHON:-python}
mkdir -p "$out"
for seed in $seeds; do
  for method in $methods; do
    "$python" bench/search_quality.py --dataset "$dataset" --method "$method" --seed "$seed" \
      --minutes "$minutes" --out "$out" "$@" >"$out/$dataset-$method-$seed.log" 2>&1 &
  done
done
wait
"$python" bench/search_quality.py --report --out "$out"
