"""Short import path for the exercise checkers: `from lecturekit.checks import check_<name>`.

Every exercise notebook (and every student's copy of one) imports from here; the checkers live in
`lecturekit.course.checks`, one module per exercise notebook.
"""
from lecturekit.course.checks import *  # noqa: F401,F403
from lecturekit.course.checks import __all__  # noqa: F401
