"""The course: exercises fenced in the library source, student workspaces, and the autograder.

``genmodels-exercise list | make | check`` (see :mod:`genmodels.exercise.cli` and
``docs/exercises.md``). The exercises themselves are listed in :mod:`genmodels.exercise.registry`.
"""
