#!/usr/bin/env bash
# The GPU check: run on a machine with an NVIDIA GPU, from a checkout of this repository.
#
#   bash benchmarks/gpu_check.sh
#
# 1. nvidia-smi;  2. a venv ($VENV, default .venv; made if missing) with
#    `pip install -e ".[test,bench]"` and the CUDA plugin of the jax just installed,
#    `jax[cuda13]` when the driver reports CUDA >= 13, else `jax[cuda12]` (jax 0.10 ships
#    both; force one with JAX_CUDA=cuda12|cuda13; SKIP_INSTALL=1 uses the venv as it is);
# 3. jax.devices(), which must be GPUs;
# 4. the numerical tests on the GPU (JAX_PLATFORMS=cuda): explicit backward passes against
#    jax.vjp (test_backward, and the kernels' own files), conv, pool, padding, dense, MLP,
#    activations, losses, normalization, the recurrent cells (Elman, Jordan, GRU, LSTM and
#    their BPTT), the nets against torch (float64 torch on the CPU), our LSTM against
#    jax.experimental.rnn's reference.  The float64 tests turn float64 on themselves
#    (`with jax.enable_x64(True)`), so no JAX_ENABLE_X64 here; matmuls at "highest"
#    precision (JAX_DEFAULT_MATMUL_PRECISION), since the float32 tolerances assume IEEE
#    float32 products, not TF32;
# 5. benchmarks/peers.py $PEERS_ARGS (default --quick --check: every peer's losses equal
#    dlcourse's, fit = the loop; torch on the GPU when it sees one);
# 6. benchmarks/gpu_lstm.py: our scanned LSTM against cuDNN's (jax.experimental.rnn.lstm),
#    values and gradients within its stated tolerances, and the time of each.
#
# Each step runs under `timeout`; the outputs go to $OUT (default benchmarks/results/gpu).
# Exits 1 when a step fails (listing them), 2 without an NVIDIA GPU.  Aimed at < 5 minutes,
# most of it pip.
set -uo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
OUT=${OUT:-benchmarks/results/gpu}
PEERS_ARGS=${PEERS_ARGS:---quick --check}
TESTS=(tests/test_backward.py tests/test_conv.py tests/test_pool.py tests/test_padding.py
       tests/test_dense.py tests/test_perceptron.py tests/test_activations.py
       tests/test_losses.py tests/test_normalization.py tests/test_rnn.py
       tests/test_elman_jordan.py tests/test_gru.py tests/test_lstm.py
       tests/test_nets_torch.py tests/test_rnn_cudnn_ref.py)
failed=()

step() {  # step NAME SECONDS COMMAND...: run COMMAND under timeout, record a failure
    local name=$1 limit=$2 start rc
    shift 2
    echo "=== $name (timeout ${limit}s): $*"
    start=$(date +%s)
    timeout --kill-after=10 "$limit" "$@"
    rc=$?
    echo "=== $name: exit $rc after $(( $(date +%s) - start ))s"
    [ "$rc" -eq 0 ] || failed+=("$name (exit $rc$([ "$rc" -eq 124 ] && echo ', timed out'))")
    return "$rc"
}

if ! step "nvidia-smi" 30 nvidia-smi; then
    echo "gpu_check: no NVIDIA GPU here (nvidia-smi failed)"; exit 2
fi

mkdir -p "$OUT"
if [ ! -x "$VENV/bin/python" ]; then
    step "make venv $VENV" 60 "${PYTHON:-python3}" -m venv "$VENV" || exit 1
fi
PY="$VENV/bin/python"

if [ "${SKIP_INSTALL:-0}" != 1 ]; then
    step "pip install -e .[test,bench]" 200 "$PY" -m pip install -q -e ".[test,bench]" || exit 1
    if [ -z "${JAX_CUDA:-}" ]; then
        cuda=$(nvidia-smi | grep -o "CUDA Version: [0-9]*" | grep -o "[0-9]*$")
        JAX_CUDA=$([ "${cuda:-0}" -ge 13 ] && echo cuda13 || echo cuda12)
    fi
    jax_version=$("$PY" -c "import jax; print(jax.__version__)")
    step "pip install jax[$JAX_CUDA]==$jax_version" 150 \
        "$PY" -m pip install -q "jax[$JAX_CUDA]==$jax_version" || exit 1
fi

step "jax.devices()" 60 env JAX_PLATFORMS=cuda "$PY" -c "
import jax, jaxlib
print('jax', jax.__version__, 'jaxlib', jaxlib.__version__, jax.devices())
assert jax.default_backend() == 'gpu', jax.default_backend()
" || { echo "gpu_check: JAX does not see the GPU"; exit 1; }

# several pytest workers share the one GPU: no preallocation of most of its memory
step "numerical tests on the GPU" 180 env JAX_PLATFORMS=cuda XLA_PYTHON_CLIENT_PREALLOCATE=false \
    JAX_DEFAULT_MATMUL_PRECISION=highest \
    "$PY" -m pytest -q -n 4 -p no:cacheprovider "${TESTS[@]}"

# shellcheck disable=SC2086  # PEERS_ARGS is a list of options
step "benchmarks/peers.py $PEERS_ARGS" 180 env JAX_PLATFORMS=cuda \
    "$PY" benchmarks/peers.py $PEERS_ARGS --json "$OUT/peers.json" --markdown "$OUT/peers.md"

step "benchmarks/gpu_lstm.py" 120 env JAX_PLATFORMS=cuda \
    "$PY" benchmarks/gpu_lstm.py --json "$OUT/gpu_lstm.json"

if [ "${#failed[@]}" -gt 0 ]; then
    echo "gpu_check: FAILED: ${failed[*]}"
    exit 1
fi
echo "gpu_check: every step passed; outputs in $OUT"
