#!/usr/bin/env bash
# lumo-hydra's main demo: a small sweep of the image-classification template, recorded in the store,
# then the results table read back from the store with lumo_hydra.Watcher.
#
#   bash examples/run_demo.sh                     # 2 methods x 2 seeds, 10 epochs, joblib launcher
#   EPOCHS=1 bash examples/run_demo.sh            # the tiny version CI runs
#   bash examples/run_demo.sh model=cnn           # extra arguments are Hydra overrides for every job
#
# Settings (environment variables):
#   LUMO_HOME   the store root (default ~/.lumo-hydra)
#   EPOCHS      epochs per job (default 10)
#   METHODS     comma-separated methods (default supervised,mixup; also pimodel)
#   SEEDS       comma-separated seeds (default 0,1)
#   LAUNCHER    Hydra launcher: joblib (default) or basic
#   JOBS        parallel jobs for joblib (default 2)
#   OUT         Hydra's output folder for this sweep (default outputs/demo/<date>_<time>)
#   PYTHON      the interpreter (default python)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python}"
EPOCHS="${EPOCHS:-10}"
METHODS="${METHODS:-supervised,mixup}"
SEEDS="${SEEDS:-0,1}"
LAUNCHER="${LAUNCHER:-joblib}"
JOBS="${JOBS:-2}"
DEFAULT_OUT='outputs/demo/${now:%Y-%m-%d_%H-%M-%S}'  # a Hydra interpolation, resolved by Hydra
OUT="${OUT:-$DEFAULT_OUT}"

launcher_args=("hydra/launcher=${LAUNCHER}")
if [ "${LAUNCHER}" = "joblib" ]; then
    launcher_args+=("hydra.launcher.n_jobs=${JOBS}")
fi

START="$("$PYTHON" -c 'import time; print(time.time())')"
echo "== sweep: methods ${METHODS} x seeds ${SEEDS}, ${EPOCHS} epoch(s), launcher ${LAUNCHER}; store: ${LUMO_HOME:-~/.lumo-hydra}"
"$PYTHON" "$HERE/image_classification/train.py" --multirun \
    "method=${METHODS}" "seed=${SEEDS}" "epochs=${EPOCHS}" \
    "${launcher_args[@]}" "hydra.sweep.dir=${OUT}" "$@"

echo
echo "== results (from the store, lumo_hydra.Watcher)"
"$PYTHON" "$HERE/image_classification/results.py" --since "$START"

echo
echo "== see them in the browser: lumo-hydra board   (http://127.0.0.1:11606/, Ctrl-C stops it)"
