#!/usr/bin/env bash
# Run the project's tests once per Keras backend, each in its own process
# (KERAS_BACKEND is read once, when keras is imported), and the tests marked
# `course`, which exercise backend-independent tooling, once.
#
#   bash scripts/test-all-backends.sh              # every test but those marked `slow`
#   bash scripts/test-all-backends.sh --slow       # only those marked `slow` (continuous integration runs both)
#   bash scripts/test-all-backends.sh -x -k cli    # further arguments go to every pytest
#
# The four runs are independent, so they go TEST_JOBS at a time (default 2:
# one per core of a small machine), each into its own log under runs/tests/.
# A run's log is printed whole when it ends, so outputs never interleave;
# meanwhile each run prints one line as each of its test files finishes
# (scripts/pytest_progress.py), so the command is never silent for long. The
# exit status is 0 only if every run passed. Each log ends with its 15 slowest tests.
set -uo pipefail
cd "$(dirname "$0")/.."

# The test models are tiny: one thread per process is fastest, and it avoids
# OpenMP threads stalling each other when processes share the CPU.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
jobs="${TEST_JOBS:-2}"

selection="not slow"
suffix=""
if [ "${1:-}" = "--slow" ]; then
    selection="slow"
    suffix="-slow"
    shift
fi
logs="runs/tests"
mkdir -p "$logs"
exec 3>&1  # the terminal, for the runs' one line per finished test file

suites=(jax tensorflow torch course)  # the longest first, so that the last to start is short
running=()                            # the suites running now,
pids=()                               # and their pytest processes

describe() {  # SUITE
    if [ "$1" = course ]; then echo "course tooling"; else echo "KERAS_BACKEND=$1"; fi
}

start() {  # SUITE [PYTEST ARGUMENTS...]: starts its pytest in the background
    local suite=$1 log="$logs/$1$suffix.log"
    shift
    echo "=== started: $(describe "$suite") (log: $log)"
    export TEST_PROGRESS_FD=3 TEST_PROGRESS_LABEL="$(describe "$suite")"
    if [ "$suite" = course ]; then
        python -m pytest -p scripts.pytest_progress --durations=15 -m "course and $selection" "$@" >"$log" 2>&1 &
    else
        KERAS_BACKEND=$suite python -m pytest -p scripts.pytest_progress --durations=15 -m "not course and $selection" "$@" >"$log" 2>&1 &
    fi
    running+=("$suite")
    pids+=("$!")
}

# Background processes do not get Ctrl-C from the terminal: stop them here.
trap 'kill "${pids[@]+"${pids[@]}"}" 2>/dev/null; exit 130' INT TERM

failed=()
summary=()
next=0
while [ "$next" -lt "${#suites[@]}" ] || [ "${#running[@]}" -gt 0 ]; do
    if [ "$next" -lt "${#suites[@]}" ] && [ "${#running[@]}" -lt "$jobs" ]; then
        start "${suites[$next]}" "$@"
        next=$((next + 1))
        continue
    fi
    sleep 1
    still_running=()
    still_pids=()
    for i in "${!running[@]}"; do
        suite=${running[$i]}
        if kill -0 "${pids[$i]}" 2>/dev/null; then
            still_running+=("$suite")
            still_pids+=("${pids[$i]}")
            continue
        fi
        wait "${pids[$i]}"
        case $? in
            0) result="passed" ;;
            5) result="no test selected" ;;  # pytest's 5: e.g. -k matched nothing in this run
            *) result="FAILED"; failed+=("$(describe "$suite")") ;;
        esac
        echo "=== $(describe "$suite"): $result"
        cat "$logs/$suite$suffix.log"
        summary+=("$(describe "$suite"): $result; $(awk 'NF { last = $0 } END { print last }' "$logs/$suite$suffix.log")")
    done
    running=("${still_running[@]+"${still_running[@]}"}")
    pids=("${still_pids[@]+"${still_pids[@]}"}")
done

echo "=== summary"
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "=== failed: ${failed[*]}"
    exit 1
fi
echo "=== all passed"
