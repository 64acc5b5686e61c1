"""The process side of `harness.Worker`: build one benchmark job, then serve requests.

Run as `python -m benchmarks.worker MODULE CONFIG_JSON` with `KERAS_BACKEND`
set. It builds `MODULE.Job(**config)` (`MODULE:CLASS` names another class
than `Job`), which warms up, answers with the job's
`info`, then reads one JSON request per line from stdin and answers each with
one JSON line holding `job.run(**request)`. Anything the libraries print goes
to stderr, so stdout carries the answers only.
"""

import importlib
import json
import os
import sys
import traceback


def main(module, config):
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    def answer(value):
        answers.write(json.dumps(value) + "\n")
        answers.flush()

    try:
        module, _, job_class = module.partition(":")
        job = getattr(importlib.import_module(module), job_class or "Job")(**json.loads(config))
        answer(job.info)
        for line in sys.stdin:
            answer(job.run(**json.loads(line)))
    except Exception:
        traceback.print_exc()
        answer({"error": traceback.format_exc(limit=-1).strip().splitlines()[-1]})


if __name__ == "__main__":
    main(*sys.argv[1:])
