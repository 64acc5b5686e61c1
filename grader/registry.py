"""The course's exercises: one registry, in the order students meet them.

Each entry names an exercise and the exercises its solution imports. Its files follow from the
name: the lesson and stubs in ``exercises/NAME.py``, the answer in ``solutions/NAME.py``, the
checks (with their points) in ``grader/test_NAME.py``. Everything that lists exercises (the
grader's collection and score table, the release, nbgrader, the autograder and ``grade-all``)
reads this registry, so adding an exercise means adding those files and one line here.

Example::

    >>> [exercise.name for exercise in COURSE][:2]
    ['positional_embedding', 'masking']
    >>> COURSE["attention"].depends
    ('masking',)
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Exercise:
    """One exercise: its name (the file stem) and the exercises its solution imports."""

    name: str
    depends: tuple = ()

    @property
    def file(self):
        return f"{self.name}.py"

    @property
    def checks(self):
        return f"test_{self.name}.py"


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

    @property
    def names(self):
        return tuple(self._exercises)


COURSE = Course(
    Exercise("positional_embedding"),
    Exercise("masking"),
    Exercise("attention", depends=("masking",)),
    Exercise("model", depends=("positional_embedding", "masking", "attention")),
    Exercise("sampling"),
    Exercise("generation", depends=("positional_embedding", "masking", "attention", "model", "sampling")),
    Exercise("gpt2", depends=("positional_embedding", "masking", "attention", "model", "sampling", "generation")),
)
"""The course, in order: a later exercise may import only earlier ones."""
