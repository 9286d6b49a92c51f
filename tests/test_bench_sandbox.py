"""The code sandbox: planted runaway and malicious samples cannot hurt the run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rmselect.bench import code
from rmselect.bench.sandbox import Limits, check_program, isolation, run_python, selfcheck

FAST = Limits(timeout_s=4, cpu_s=2, mem_mb=256)
ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def test_pass_and_fail():
    assert run_python("assert 1 + 1 == 2\n", FAST).status == "passed"
    r = run_python("assert 1 + 1 == 3\n", FAST)
    assert r.status == "failed" and "AssertionError" in r.stderr
    selfcheck(FAST)


def test_infinite_loop_is_stopped():
    r = run_python("while True:\n    pass\n", Limits(timeout_s=20, cpu_s=1, mem_mb=256))
    assert r.status in ("cpu_limit", "timeout") and not r.passed
    assert r.wall_s < 20


def test_sleeping_program_hits_the_wall_clock():
    r = run_python("import time\ntime.sleep(60)\n", Limits(timeout_s=1, cpu_s=2, mem_mb=256))
    assert r.status == "timeout" and r.wall_s < 10


def test_memory_bomb_is_contained():
    r = run_python("x = []\nwhile True:\n    x.append(bytearray(50 * 2**20))\n", FAST)
    assert r.status == "memory" and not r.passed
    r = run_python("b = bytearray(8 * 2**30)\n", FAST)
    assert r.status == "memory"


def test_file_deleting_sample_cannot_touch_outside_files(tmp_path: Path):
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "inner.txt").write_text("keep me too")
    bomb = (
        "import os, shutil, subprocess\n"
        f"for f in (lambda: os.remove({str(victim)!r}), lambda: os.unlink({str(victim)!r}),\n"
        f"          lambda: shutil.rmtree({str(folder)!r}),\n"
        f"          lambda: subprocess.run(['rm', '-rf', {str(folder)!r}]),\n"
        f"          lambda: os.system('rm -rf {folder}')):\n"
        "    try:\n"
        "        f()\n"
        "    except Exception as e:\n"
        "        print('blocked', type(e).__name__)\n"
        "open('scratch_file.txt', 'w').write('inside scratch is fine')\n"
    )
    r = run_python(bomb, FAST)
    assert r.status == "passed", r.stderr  # the program itself ran to its end
    assert r.stdout.count("blocked") == 5
    assert victim.read_text() == "keep me"
    assert (folder / "inner.txt").read_text() == "keep me too"


@pytest.mark.skipif(not ROOT, reason="the uid drop to nobody needs root; the guard alone is "
                    "bypassable (documented in rmselect.bench.sandbox)")
def test_guard_bypass_is_stopped_by_the_kernel(tmp_path: Path):
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")
    r = run_python(f"import posix\nposix.unlink({str(victim)!r})\n", FAST)
    assert r.status == "failed" and "PermissionError" in r.stderr
    assert victim.exists()
    assert isolation()["user"] == "nobody"


def test_no_network():
    r = run_python(
        "import socket\ns = socket.socket()\ns.connect(('127.0.0.1', 9))\n", FAST
    )
    assert r.status == "failed" and "PermissionError" in r.stderr
    if isolation()["network"].startswith("netns"):
        # bypassing the guard meets an empty network namespace (loopback down)
        r = run_python(
            "import _socket\ns = _socket.socket()\ns.connect(('1.1.1.1', 80))\n", FAST
        )
        assert r.status == "failed" and "OSError" in r.stderr


def test_minimal_environment_and_scratch_cwd():
    os.environ["RMSELECT_TEST_SECRET"] = "token"
    try:
        r = run_python(
            "import os\nprint(sorted(os.environ))\nprint(os.getcwd())\n", FAST
        )
    finally:
        del os.environ["RMSELECT_TEST_SECRET"]
    assert r.passed and "RMSELECT_TEST_SECRET" not in r.stdout and "rmselect-sbx-" in r.stdout


def test_humaneval_scoring_pass_at_1():
    problems = [
        {"task_id": "T/0", "prompt": "def add(a, b):\n", "test":
         "def check(candidate):\n    assert candidate(2, 3) == 5\n", "entry_point": "add"},
        {"task_id": "T/1", "prompt": "def neg(a):\n", "test":
         "def check(candidate):\n    assert candidate(2) == -2\n", "entry_point": "neg"},
        {"task_id": "T/2", "prompt": "def spin():\n", "test":
         "def check(candidate):\n    candidate()\n", "entry_point": "spin"},
    ]
    completions = ["    return a + b\n", "    return a\n", "    while True:\n        pass\n"]
    recs = code.score(problems, completions, Limits(timeout_s=3, cpu_s=1, mem_mb=256))
    assert [r["status"] for r in recs][:2] == ["passed", "failed"]
    assert recs[2]["status"] in ("cpu_limit", "timeout")
    assert code.pass_at_1(recs) == pytest.approx(1 / 3)
    assert check_program("p\n", "c\n", "t", "f").endswith("check(f)\n")


def test_truncate_at_stop_strings():
    assert code.truncate("    return 1\n\ndef g():", ["\n\n", "def "]) == "    return 1"
    assert code.truncate("x", ["\n\n"]) == "x"


def test_lm_eval_metric_hook(monkeypatch):
    monkeypatch.setenv("RMSELECT_SANDBOX", '{"timeout_s": 4, "cpu_s": 2, "mem_mb": 256}')
    ok = code.lm_eval_pass_at_1(["assert f() == 1"], [["def f():\n    return 1\n"]])
    bad = code.lm_eval_pass_at_1(["assert f() == 1"], [["def f():\n    return 2\n"]])
    assert (ok, bad) == (1.0, 0.0)


def test_load_problems_names_the_bad_line(tmp_path: Path):
    p = tmp_path / "p.jsonl"
    p.write_text('{"task_id": "a", "prompt": "x", "test": "y", "entry_point": "z"}\n{"task_id": 1}\n')
    with pytest.raises(ValueError, match=r"line 2: field\(s\) task_id, prompt, test, entry_point"):
        code.load_problems(p)


def test_heal_strips_trailing_whitespace_only():
    p = {"task_id": "a", "prompt": "def f(x):\n", "test": "t", "entry_point": "f"}
    assert code.heal(p)["prompt"] == "def f(x):" and p["prompt"] == "def f(x):\n"
    rec = code.score([code.heal(p)], ["\n    return x\n"], FAST)
    # the healed program is still valid Python: stripped prompt + completion
    assert rec[0]["status"] == "failed"  # the test string "t" is a NameError, not a SyntaxError
    assert "NameError" in rec[0]["stderr_tail"]
