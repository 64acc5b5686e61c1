#!/usr/bin/env bash
# Run the project's tests once per Keras backend, each in its own process
# (KERAS_BACKEND is read once, when keras is imported). Tests marked `course`
# exercise backend-independent tooling and run once, at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

# The test models are tiny: one thread per process is fastest, and it avoids
# OpenMP threads stalling each other when test subprocesses share the CPU.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"

status=0
for backend in tensorflow torch jax; do
    echo "=== KERAS_BACKEND=$backend"
    KERAS_BACKEND=$backend python -m pytest -m "not course" "$@" || status=1
done
echo "=== course tooling"
python -m pytest -m course "$@" || status=1
exit $status
