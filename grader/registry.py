"""The course's exercises: one registry, in the order students meet them.

Each entry names an exercise and the exercises its solution imports. Its files follow from the
name: the lesson and stubs in ``exercises/NAME.py``, the answer in ``solutions/NAME.py``, the
checks (with their points) in ``grader/test_NAME.py``. Everything that lists exercises (the
grader's collection and score table, the release, nbgrader, the autograder and ``grade-all``)
reads this registry, so adding an exercise means adding those files and one line here.

A course may hand out some of its exercises (`Course.subset`): a dependency left out of the
subset is then *given*, its finished code handed out with the exercises and never graded.

Example::

    >>> [exercise.name for exercise in COURSE][:3]
    ['tokenizer', 'positional_embedding', 'masking']
    >>> COURSE["attention"].depends
    ('masking',)
    >>> COURSE.subset(["attention"])
    Course(Exercise('masking', given=True), Exercise('attention', depends=('masking',)))
"""

import dataclasses
import importlib.util
import pathlib


@dataclasses.dataclass(frozen=True)
class Exercise:
    """One exercise: its name (the file stem), the exercises its solution imports, and whether it is
    given (finished code handed out, not graded) rather than asked."""

    name: str
    depends: tuple = ()
    given: bool = False

    @property
    def file(self):
        return f"{self.name}.py"

    @property
    def checks(self):
        return f"test_{self.name}.py"

    def __repr__(self):
        options = ([f"depends={self.depends!r}"] if self.depends else []) + (["given=True"] if self.given else [])
        return f"Exercise({', '.join([repr(self.name), *options])})"


class Course:
    """The exercises in course order, looked up by name."""

    def __init__(self, *exercises):
        self._exercises = {}
        for exercise in exercises:
            later = [name for name in exercise.depends if name not in self._exercises]
            if later:
                raise ValueError(f"exercise {exercise.name!r} may depend only on exercises before it; "
                                 f"not on {', '.join(later)}")
            self._exercises[exercise.name] = exercise

    def __iter__(self):
        return iter(self._exercises.values())

    def __len__(self):
        return len(self._exercises)

    def __contains__(self, name):
        return name in self._exercises

    def __getitem__(self, name):
        try:
            return self._exercises[name]
        except KeyError:
            raise KeyError(f"no exercise named {name!r}; the course has: {', '.join(self.names)}") from None

    def __repr__(self):
        return f"Course({', '.join(map(repr, self))})"

    @property
    def names(self):
        """Every exercise's name, given ones included, in course order."""
        return tuple(self._exercises)

    @property
    def graded(self):
        """The names of the exercises students write and the grader grades, in course order."""
        return tuple(exercise.name for exercise in self if not exercise.given)

    @property
    def given(self):
        """The names of the given exercises, in course order."""
        return tuple(exercise.name for exercise in self if exercise.given)

    def subset(self, names=None):
        """The course of the exercises `names` (default: those graded now), plus the exercises they
        import, directly or not, as given code.

        Raises:
            ValueError: `names` is empty or names an exercise this course does not grade.
        """
        if names is None:
            return self
        names = list(names)
        unknown = [name for name in names if name not in self.graded]
        if unknown or not names:
            raise ValueError(f"exercises must be some of {', '.join(self.graded)}; "
                             f"got {', '.join(map(repr, unknown)) if unknown else 'none'}")
        needed = set(names)
        for exercise in reversed(list(self)):  # later exercises depend only on earlier ones
            if exercise.name in needed:
                needed.update(exercise.depends)
        return Course(*(dataclasses.replace(exercise, given=exercise.given or exercise.name not in names)
                        for exercise in self if exercise.name in needed))

    def source(self):
        """The Python statement that defines this course as ``COURSE``, as a release's registry holds it."""
        return "COURSE = Course(\n" + "".join(f"    {exercise!r},\n" for exercise in self) + ")\n"


def load_course(root):
    """The `COURSE` of the grader in `root`: a course repository, or a release built from one.

    A release's grader knows only the exercises released, so tools that grade with another
    folder's grader ask it, not this module.
    """
    path = pathlib.Path(root) / "grader" / "registry.py"
    if not path.is_file():
        raise ValueError(f"root must hold a course's grader/registry.py; {str(root)!r} does not")
    spec = importlib.util.spec_from_file_location("course_registry", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.COURSE


COURSE = Course(
    Exercise("tokenizer"),
    Exercise("positional_embedding"),
    Exercise("masking"),
    Exercise("attention", depends=("masking",)),
    Exercise("model", depends=("positional_embedding", "masking", "attention")),
    Exercise("training", depends=("model",)),  # its checks train the student's GPT
)
"""The course, in order: a later exercise may import only earlier ones."""
