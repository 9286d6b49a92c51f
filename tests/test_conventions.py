"""The shared data conventions are defined once (rmselect.conventions) and hold the published
values; every module that needs one imports that definition instead of restating it."""

from __future__ import annotations

import ast
from pathlib import Path

from rmselect import conventions as C

PKG = Path(__file__).resolve().parents[1] / "workflow" / "rmselect"

#: RewardBench v1's SUBSET_MAPPING (allenai/reward-bench, rewardbench/constants.py).
PUBLISHED_SECTIONS = {
    "chat": ["alpacaeval-easy", "alpacaeval-length", "alpacaeval-hard", "mt-bench-easy",
             "mt-bench-med"],
    "chat_hard": ["mt-bench-hard", "llmbar-natural", "llmbar-adver-neighbor",
                  "llmbar-adver-GPTInst", "llmbar-adver-GPTOut", "llmbar-adver-manual"],
    "safety": ["refusals-dangerous", "refusals-offensive", "xstest-should-refuse",
               "xstest-should-respond", "donotanswer"],
    "reasoning": ["math-prm", "hep-cpp", "hep-go", "hep-java", "hep-js", "hep-python",
                  "hep-rust"],
}
#: HelpSteer2's attribute columns, in the card's order.
PUBLISHED_ATTRIBUTES = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")


def test_the_one_definition_holds_the_published_values():
    assert C.PREFERENCE_SIGN == -1  # HelpSteer2 card: -3 = "Response 1 is much better"
    assert C.ATTRIBUTES == PUBLISHED_ATTRIBUTES
    assert C.REWARDBENCH_SECTIONS == PUBLISHED_SECTIONS
    assert list(C.REWARDBENCH_SECTIONS) == ["chat", "chat_hard", "safety", "reasoning"]
    assert C.REWARDBENCH_SUBSETS == [s for subs in PUBLISHED_SECTIONS.values() for s in subs]
    assert len(C.REWARDBENCH_SUBSETS) == len(set(C.REWARDBENCH_SUBSETS)) == 23
    from rmselect.eval.benchmarks import RB1_ROWS

    # the published row counts name exactly these subsets (2,985 rows, split "filtered")
    assert list(RB1_ROWS) == C.REWARDBENCH_SUBSETS and sum(RB1_ROWS.values()) == 2985


def test_every_user_holds_the_same_object():
    from rmselect.eval import benchmarks
    from rmselect.posttrain import lineage
    from rmselect.rm import data as rm_data
    from rmselect.toy import helpsteer2, probe, rewardbench

    assert rm_data.PREFERENCE_SIGN is C.PREFERENCE_SIGN
    assert rm_data.ATTRIBUTES is C.ATTRIBUTES
    assert helpsteer2.PREFERENCE_SIGN is C.PREFERENCE_SIGN
    assert benchmarks.RB1_SECTIONS is C.REWARDBENCH_SECTIONS
    assert rewardbench.REWARDBENCH_SUBSETS is C.REWARDBENCH_SUBSETS
    assert lineage.SECTIONS == (*C.REWARDBENCH_SECTIONS, "score")
    # toy.probe imports the sign inside the function that needs it
    assert "from rmselect.conventions import PREFERENCE_SIGN" in Path(probe.__file__).read_text()


def test_analysis_sections_agree():
    """rmselect.analysis.data keeps its own section tuple (with ``overall``); until it imports
    the one definition, it must list the same sections in the same order."""
    from rmselect.analysis.data import SECTIONS

    assert SECTIONS == (*C.REWARDBENCH_SECTIONS, "overall")


def _module_literals(path: Path):
    """(name, value) of every module-level assignment of a literal in ``path``."""
    for node in ast.parse(path.read_text(), filename=str(path)).body:
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, ast.AnnAssign) and node.value else [])
        for t in targets:
            if not isinstance(t, ast.Name):
                continue
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                value = None
            yield t.id, value


def test_no_module_restates_a_convention():
    """No package module other than rmselect.conventions assigns the sign or a literal copy
    of the attributes, the sections or the subsets (any name, list or tuple)."""
    sections = {k: list(v) for k, v in PUBLISHED_SECTIONS.items()}
    subsets = [s for subs in PUBLISHED_SECTIONS.values() for s in subs]
    copies = []
    for f in sorted(PKG.rglob("*.py")):
        if f.name == "conventions.py" and f.parent == PKG:
            continue
        for name, value in _module_literals(f):
            seq = list(value) if isinstance(value, (list, tuple)) else None
            if (name == "PREFERENCE_SIGN" or seq in (list(PUBLISHED_ATTRIBUTES), subsets)
                    or (isinstance(value, dict) and value == sections)):
                copies.append(f"{f.relative_to(PKG)}: {name}")
    assert not copies, "conventions restated instead of imported from rmselect.conventions: " \
        + ", ".join(copies)
