"""The lm-eval files of the toy benchmarks, shipped as package data in ``templates/``.

lm-eval reads a task directory: one YAML per task, naming its data file and a loader
function. These files are data, not code that builds strings: ``templates/task.yaml`` is the
YAML of every toy task with ``${task}`` for the task's name (:class:`string.Template`), and
``templates/toy_loader.py`` is copied as it is. :func:`rmselect.toy.tasks.write_tasks`
writes them into the tasks directory. They travel with the installed package
(``pyproject.toml`` package-data) and, as package data of this package, count in the code
hash of every rule whose script reaches it (:mod:`rmselect.cluster.rerun`), so an edit to
either file reruns the toy data job.
"""

from __future__ import annotations

from importlib.resources import files
from string import Template

#: The loader's file name in the tasks directory; every YAML names it (``toy_loader.load``).
LOADER_NAME = "toy_loader.py"


def _template(name: str) -> str:
    return files(__name__).joinpath("templates", name).read_text(encoding="utf-8")


def loader_source() -> str:
    """The text of the loader module every task YAML names (``templates/toy_loader.py``)."""
    return _template(LOADER_NAME)


def task_yaml(task: str) -> str:
    """The lm-eval YAML of toy task ``task`` (``templates/task.yaml`` with its name filled in)."""
    return Template(_template("task.yaml")).substitute(task=task)
