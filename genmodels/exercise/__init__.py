"""The course: exercises fenced in the library source, student workspaces, and the autograder.

``genmodels-exercise list | make | check`` (see :mod:`genmodels.exercise.cli` and
``docs/exercises.md``). Each exercise is declared at its fence in the library source and its
tests carry ``@pytest.mark.exercise(name)``; :mod:`genmodels.exercise.registry` reads them.
"""
