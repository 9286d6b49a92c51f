"""code_hash: content (not mtime) of scripts and packages decides a rule's `code` param."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rmselect.cluster.rerun import code_files, code_hash


def test_hash_follows_content_not_mtime(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    (tmp_path / "run.py").write_text("print(1)\n")
    h = code_hash("run.py", "pkg", root=tmp_path)
    assert len(h) == 12
    os.utime(tmp_path / "run.py", (1, 1))  # a checkout touching the file
    assert code_hash("run.py", "pkg", root=tmp_path) == h
    (tmp_path / "pkg" / "a.py").write_text("x = 2\n")  # an edit in the package
    h2 = code_hash("run.py", "pkg", root=tmp_path)
    assert h2 != h
    (tmp_path / "pkg" / "b.py").write_text("")  # a new module
    assert code_hash("run.py", "pkg", root=tmp_path) not in (h, h2)
    assert [f.name for f in code_files("pkg", root=tmp_path)] == ["a.py", "b.py"]


def _pkg(root, files):
    for rel, text in files.items():
        f = root / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)


def test_hash_follows_the_scripts_imports_transitively(tmp_path):
    """A script's hash covers every rmselect module it reaches through imports -- absolute,
    relative, `from pkg import module` and lazy imports inside functions -- and nothing else:
    a module nobody imports can change without a rerun."""
    _pkg(tmp_path, {
        "workflow/scripts/run.py": "from rmselect.stage.main import go\n",
        "workflow/rmselect/__init__.py": "",
        "workflow/rmselect/stage/__init__.py": "",
        "workflow/rmselect/stage/main.py": "from . import helper\n\ndef go():\n    pass\n",
        "workflow/rmselect/stage/helper.py": "def f():\n    from rmselect import util\n",
        "workflow/rmselect/util.py": "import json\nimport rmselect.deep.leaf\n",
        "workflow/rmselect/deep/__init__.py": "",
        "workflow/rmselect/deep/leaf.py": "x = 1\n",
        "workflow/rmselect/unused.py": "y = 1\n",
    })
    files = {str(f.relative_to(tmp_path)) for f in code_files("workflow/scripts/run.py", root=tmp_path)}
    assert files == {
        "workflow/scripts/run.py", "workflow/rmselect/__init__.py",
        "workflow/rmselect/stage/__init__.py", "workflow/rmselect/stage/main.py",
        "workflow/rmselect/stage/helper.py", "workflow/rmselect/util.py",
        "workflow/rmselect/deep/__init__.py", "workflow/rmselect/deep/leaf.py",
    }
    h = code_hash("workflow/scripts/run.py", root=tmp_path)
    (tmp_path / "workflow/rmselect/unused.py").write_text("y = 2\n")
    assert code_hash("workflow/scripts/run.py", root=tmp_path) == h
    (tmp_path / "workflow/rmselect/deep/leaf.py").write_text("x = 2\n")  # four imports away
    assert code_hash("workflow/scripts/run.py", root=tmp_path) != h


def test_a_folder_counts_with_its_data_files(tmp_path):
    """lm-eval task folders hold YAML next to Python: an edited YAML must rerun the jobs."""
    _pkg(tmp_path, {"tasks/t.yaml": "a: 1\n", "tasks/u.py": ""})
    h = code_hash("tasks", root=tmp_path)
    (tmp_path / "tasks/t.yaml").write_text("a: 2\n")
    assert code_hash("tasks", root=tmp_path) != h


def test_hash_covers_the_data_a_reached_package_ships(tmp_path):
    """A package's non-Python files and its data folders (no __init__.py; a .py file there is
    data, e.g. a loader that is copied) count for every script that reaches the package:
    editing such a file changes the hash. Data of a package the script never reaches, and
    byte code, do not."""
    _pkg(tmp_path, {
        "workflow/scripts/run.py": "from rmselect.stage.main import go\n",
        "workflow/rmselect/__init__.py": "",
        "workflow/rmselect/stage/__init__.py": "",
        "workflow/rmselect/stage/main.py": "from rmselect.stage import files\n",
        "workflow/rmselect/stage/files/__init__.py": "",
        "workflow/rmselect/stage/files/defaults.json": "{}\n",
        "workflow/rmselect/stage/files/templates/task.yaml": "task: ${task}\n",
        "workflow/rmselect/stage/files/templates/loader.py": "x = 1\n",
        "workflow/rmselect/other/__init__.py": "",
        "workflow/rmselect/other/table.csv": "a\n",
    })
    files = {str(f.relative_to(tmp_path)) for f in code_files("workflow/scripts/run.py", root=tmp_path)}
    data = {"workflow/rmselect/stage/files/defaults.json",
            "workflow/rmselect/stage/files/templates/task.yaml",
            "workflow/rmselect/stage/files/templates/loader.py"}
    assert data <= files and "workflow/rmselect/other/table.csv" not in files
    h = code_hash("workflow/scripts/run.py", root=tmp_path)
    for rel in sorted(data):
        f = tmp_path / rel
        f.write_text(f.read_text() + "# edited\n")
        h2 = code_hash("workflow/scripts/run.py", root=tmp_path)
        assert h2 != h, rel
        h = h2
    (tmp_path / "workflow/rmselect/other/table.csv").write_text("b\n")  # not reached
    cache = tmp_path / "workflow/rmselect/stage/files/templates/__pycache__/loader.cpython-311.pyc"
    cache.parent.mkdir()
    cache.write_bytes(b"\0")  # byte code is no shipped data
    (tmp_path / "workflow/rmselect/stage/files/.task.yaml.swp").write_text("")  # nor an editor's file
    assert code_hash("workflow/scripts/run.py", root=tmp_path) == h


def test_the_toy_task_templates_count_for_the_toy_data_job_only():
    """The lm-eval YAML template and loader that rule toy_data renders into results/toy/tasks
    are package data of rmselect.toy.lmeval: they are in that rule's code files, and in no
    file set of the toy rules that build what every later stage needs (world, pre-training)."""
    repo = Path(__file__).resolve().parents[1]
    templates = {"workflow/rmselect/toy/lmeval/templates/task.yaml",
                 "workflow/rmselect/toy/lmeval/templates/toy_loader.py"}

    def files(script: str) -> set[str]:
        return {str(f.relative_to(repo)) for f in code_files(f"workflow/scripts/{script}", root=repo)}

    assert templates <= files("toy_data.py")
    assert not templates & (files("toy_world.py") | files("toy_pretrain.py") | files("toy_tokenizer.py"))


def test_missing_path_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.py"):
        code_hash("nope.py", root=tmp_path)


def _rule_blocks(text: str) -> dict[str, str]:
    """Rule name -> its text, for every `rule NAME:` (or `checkpoint NAME:`) in a .smk file."""
    import re

    starts = [(m.start(), m.group(1)) for m in re.finditer(r"^\s*(?:rule|checkpoint) (\w+):$", text, re.M)]
    ends = [s for s, _ in starts[1:]] + [len(text)]
    return {name: text[s:e] for (s, name), e in zip(starts, ends)}


def test_every_rule_that_runs_a_script_hashes_that_script():
    """Snakemake reruns a job on a changed shell command, not on a changed script or
    package module behind it: every rule that runs `workflow/scripts/X.py` must carry a
    `code=code_hash(...)` param naming X.py (the README promises code edits rerun jobs)."""
    import re
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    missing = []
    for smk in sorted((repo / "workflow" / "rules").glob("*.smk")):
        text = smk.read_text()
        # CODE = code_hash(...) defined at the top of a file and named by rules
        shared = {m.group(1): m.group(2)
                  for m in re.finditer(r"^(\w*CODE\w*) = code_hash\((.*?)\)[ \t]*$", text, re.M | re.S)}
        for name, block in _rule_blocks(text).items():
            call = re.search(r"code=code_hash\((.*?)\)", block, re.S)
            # scripts the rule runs: named in its shell or params, outside the hash itself
            rest = block.replace(call.group(0), "") if call else block
            scripts = set(re.findall(r"(?:workflow/scripts/|\{ASCRIPT\}/)(\w+)\.py", rest))
            scripts -= {"gpu_slot", "launch"}  # launch wrappers, not the job's logic
            if not scripts:
                continue
            var = re.search(r"code=(\w*CODE\w*)", block)
            hashed = call.group(1) if call else shared.get(var.group(1), "") if var else ""
            if not all(f"/{s}.py" in hashed for s in scripts):
                missing.append(f"{smk.name}:{name} ({', '.join(sorted(scripts))})")
    assert not missing, "rules without a code hash of their script: " + "; ".join(missing)
