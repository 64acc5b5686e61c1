"""Batch grading throughput: `keras-tx grade-all` on a synthetic class, students' code sandboxed.

Writes `--students` hand-ins (the solutions, and the solutions with one of a few classic
mistakes, a syntax error or nothing done, in turn), grades them with
`keras_tx_tools.course.batch.grade_all` (`--jobs` warm graders, each hand-in's code in a
fresh bubblewrap-sandboxed child), and reports hand-ins per minute, CPU seconds per hand-in
(the graders and the sandboxed children; not the one-off start of each grader's sandboxed
process) and where the time goes: starting the graders (Keras imported once per
grader and once per sandboxed process), the student's code in the sandbox (loading the files
and every call into them) and the grader's own work (pytest, the live reference, the checks).
Isolation is never switched off here: a machine without bubblewrap is an error.

Run it:

    python -m benchmarks grade-all --students 300 --jobs 2 --backends torch --out grade-all.json
"""

import resource
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks import harness

QUICK = {"students": 2, "jobs": 1, "rounds": 1}
ROOT = Path(__file__).resolve().parent.parent

VARIANTS = {
    "correct": {},
    "transposed_mask": {"masking.py": ("return key_positions <= query_positions",
                                       "return key_positions >= query_positions")},
    "unscaled_attention": {"attention.py": ("ops.matmul(query, ops.swapaxes(key, -1, -2)) / ops.sqrt(depth)",
                                            "ops.matmul(query, ops.swapaxes(key, -1, -2))")},
    "missing_residual": {"model.py": ("x = x + self.attention(self.norm1(x), attention_mask)",
                                      "x = self.attention(self.norm1(x), attention_mask)")},
    "syntax_error": {"attention.py": ("def merge_heads(x):", "def merge_heads(x:")},
    "not_attempted": None,
}
"""The synthetic students, in turn: ``{file: (solution text, replacement)}``, or None for the stubs."""


def write_class(folder, students):
    """`students` hand-ins in `folder`, one subfolder each, cycling through `VARIANTS`."""
    from keras_tx_tools.course import stubs

    names = list(VARIANTS)
    for index in range(students):
        variant = names[index % len(names)]
        student = folder / f"{index:04d}_{variant}"
        student.mkdir(parents=True)
        for solution in sorted((ROOT / "solutions").glob("[!_]*.py")):
            source = solution.read_text()
            patches = VARIANTS[variant]
            if patches is None:
                source = stubs.strip_solutions(source)
            elif solution.name in patches:
                old, new = patches[solution.name]
                if old not in source:
                    raise harness.BenchmarkError(f"{solution.name} no longer contains {old!r}: update VARIANTS")
                source = source.replace(old, new)
            (student / solution.name).write_text(source)


def grade_class(folder, backend, jobs, exercises=None):
    """Grade the class in `folder` (all exercises, or those listed); ``(grades, wall seconds, CPU seconds of
    every process)``."""
    from keras_tx_tools.course import batch

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    grades = batch.grade_all(folder, grading_root=ROOT, backend=backend, jobs=jobs, progress=False,
                             exercises=exercises)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return grades, seconds, cpu


def breakdown(grades, seconds, cpu, jobs):
    """Where the time goes, from the grades' own timings: a dict of figures."""
    count = len(grades)
    graded = [grade.seconds["total"] for grade in grades if grade.seconds.get("total")]
    student = [grade.seconds["student"] for grade in grades if grade.seconds.get("student") is not None]
    student_cpu = [grade.seconds["student_cpu"] for grade in grades if grade.seconds.get("student_cpu") is not None]
    busy = sum(graded)
    return {
        "hand_ins": count,
        "hand_ins_per_minute": 60 * count / seconds,
        "wall_seconds": seconds,
        # The graders' CPU (pytest, reference, checks, Keras imports) is counted by the operating
        # system; the sandboxed children's by the process that forks them, reported per hand-in.
        "cpu_seconds_per_hand_in": (cpu + sum(student_cpu)) / count,
        "wall_seconds_per_hand_in_per_grader": busy / count,
        "of_which_student_process": sum(student) / count,
        "student_process_cpu_seconds_per_hand_in": sum(student_cpu) / count,
        "of_which_grader": (busy - sum(student)) / count,
        "grader_start_seconds": max(0.0, seconds - busy / jobs),
        "statuses": {status: sum(grade.status == status for grade in grades) for status in ("graded", "failed", "timeout", "error")},
        "isolated": all(grade.isolation.startswith("sandboxed") for grade in grades if grade.isolation),
    }


def add_arguments(parser):
    parser.add_argument("--students", type=int, default=300, help="hand-ins in the class (default: 300)")
    parser.add_argument("--jobs", type=int, default=2, help="warm graders in parallel (default: 2)")
    parser.add_argument("--exercises", default=None,
                        help="grade only these exercises, comma-separated (default: the whole course), e.g. "
                        "positional_embedding,masking,attention,model for the course's first four")
    parser.set_defaults(rounds=1, backends="torch")


def main(args):
    from grader.sandbox import bubblewrap_works

    if not bubblewrap_works():
        raise harness.BenchmarkError("bubblewrap (bwrap) is missing or cannot create namespaces: "
                                     "this benchmark measures grading with isolation on")
    if args.students < 1 or args.jobs < 1:
        raise ValueError("--students and --jobs must be at least 1")
    exercises = args.exercises.split(",") if args.exercises else None
    runs, summary = {}, {}
    for backend in args.backends:
        runs[backend] = []
        for _ in range(args.rounds):
            folder = Path(tempfile.mkdtemp(prefix="keras-tx-class-"))
            try:
                write_class(folder, args.students)
                grades, seconds, cpu = grade_class(folder, backend, args.jobs, exercises)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            runs[backend].append(breakdown(grades, seconds, cpu, args.jobs))
        summary[backend] = runs[backend][-1]
    print(f"\nkeras-tx grade-all, {args.students} synthetic hand-ins, {args.jobs} warm graders, sandboxed")
    header = ["backend", "hand-ins/min", "wall s", "CPU s/hand-in", "student CPU s", "student s", "grader s",
              "start s"]
    rows = [[backend, s["hand_ins_per_minute"], s["wall_seconds"], s["cpu_seconds_per_hand_in"],
             s["student_process_cpu_seconds_per_hand_in"], s["of_which_student_process"], s["of_which_grader"],
             s["grader_start_seconds"]]
            for backend, s in summary.items()]
    print(harness.format_table(header, rows))
    config = {"students": args.students, "jobs": args.jobs, "rounds": args.rounds, "variants": list(VARIANTS),
              "exercises": exercises or "all"}
    return harness.write_report(args.out, "grade-all", config, runs, summary)
