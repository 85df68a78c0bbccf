#!/usr/bin/env bash
# The ERC template's demo: models x modalities x seeds on the synthetic MELD-layout set (CPU, a few
# minutes), recorded in the store; then the Watcher's table, two plots, and how to open the board.
#
#   bash examples/emotion_recognition/run_erc_demo.sh                 # 6 configurations x 3 seeds, 8 epochs
#   EPOCHS=1 SEEDS=0 LAUNCHER=basic bash .../run_erc_demo.sh          # the tiny version the tests run
#   bash .../run_erc_demo.sh context_window=3                         # extra arguments: Hydra overrides for every job
#
# Sweeps: (1) model=text_only,audio_only,early_fusion,late_fusion,context_gru (text+audio+visual for the
# fusion and context models); (2) model=context_gru modality=text (context without fusion).
#
# Settings (environment variables):
#   LUMO_HOME   the store root (default ~/.lumo-hydra)
#   EPOCHS      epochs per job (default 8)
#   SEEDS       comma-separated seeds (default 0,1,2)
#   MODELS      the models of sweep 1 (default text_only,audio_only,early_fusion,late_fusion,context_gru)
#   CONTEXT_MODALITIES  the modalities of sweep 2 (default text; e.g. text,text+audio; empty: no sweep 2)
#   DATA        a MELD-layout folder (default: the synthetic set, written first by make_data.py)
#   DIALOGUES   "train,dev,test" dialogues of the synthetic set when it is written (default 200,40,100)
#   LAUNCHER    Hydra launcher: joblib (default) or basic
#   JOBS        parallel jobs for joblib (default 2)
#   PLOTS       folder for the PNG files (default plots/erc)
#   OUT         Hydra's output folder for the sweeps (default outputs/erc_demo/<date>_<time>)
#   PYTHON      the interpreter (default python)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python}"
EPOCHS="${EPOCHS:-8}"
SEEDS="${SEEDS:-0,1,2}"
MODELS="${MODELS:-text_only,audio_only,early_fusion,late_fusion,context_gru}"
CONTEXT_MODALITIES="${CONTEXT_MODALITIES-text}"
LAUNCHER="${LAUNCHER:-joblib}"
JOBS="${JOBS:-2}"
PLOTS="${PLOTS:-plots/erc}"
DEFAULT_OUT='outputs/erc_demo/${now:%Y-%m-%d_%H-%M-%S}'  # a Hydra interpolation, resolved by Hydra
OUT="${OUT:-$DEFAULT_OUT}"

if [ -z "${DATA:-}" ]; then
    IFS=, read -r N_TRAIN N_DEV N_TEST <<< "${DIALOGUES:-200,40,100}"
    DATA="$(mktemp -d "${TMPDIR:-/tmp}/erc-data.XXXXXX")/synthetic"
    "$PYTHON" "$HERE/make_data.py" --out "$DATA" --train "$N_TRAIN" --dev "$N_DEV" --test "$N_TEST"
fi

launcher_args=("hydra/launcher=${LAUNCHER}")
if [ "${LAUNCHER}" = "joblib" ]; then
    launcher_args+=("hydra.launcher.n_jobs=${JOBS}")
fi
common=("seed=${SEEDS}" "epochs=${EPOCHS}" "data.root=${DATA}" "${launcher_args[@]}")

START="$("$PYTHON" -c 'import time; print(time.time())')"
echo "== sweep 1: models ${MODELS} x seeds ${SEEDS}, ${EPOCHS} epoch(s); store: ${LUMO_HOME:-~/.lumo-hydra}"
"$PYTHON" "$HERE/train.py" --multirun "model=${MODELS}" "${common[@]}" "hydra.sweep.dir=${OUT}/models" "$@"
if [ -n "${CONTEXT_MODALITIES}" ]; then
    echo
    echo "== sweep 2: model=context_gru x modalities ${CONTEXT_MODALITIES} x seeds ${SEEDS}"
    "$PYTHON" "$HERE/train.py" --multirun model=context_gru "modality=${CONTEXT_MODALITIES}" "${common[@]}" \
        "hydra.sweep.dir=${OUT}/context" "$@"
fi

echo
echo "== results (from the store, lumo_hydra.Watcher)"
"$PYTHON" "$HERE/results.py" --since "$START"
echo
echo "== plots"
"$PYTHON" "$HERE/analysis.py" --since "$START" --out "$PLOTS"
echo
echo "== browse the runs: lumo-hydra board --root ${LUMO_HOME:-~/.lumo-hydra}   (then open the printed http://127.0.0.1:<port>/)"
echo "   or in a terminal: lumo-hydra list --exp emotion_recognition --sort metrics.test_f1"
