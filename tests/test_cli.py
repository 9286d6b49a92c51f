"""rmselect.cli: one dataclass declares an entry point's flags, and a command line goes back
to the same values (what lets a rule derive its flags from the entry point's declaration)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rmselect import cli
from rmselect.cli import opt


@dataclass(kw_only=True)
class Demo:
    """A demo entry point."""

    model: str = opt("model name")
    lr: float = opt("learning rate")
    out: list[Path] = opt("run dirs", repeat=True)
    spec: list[dict[str, Any]] = opt("JSON specs", repeat=True, json=True, default=[])
    tasks: list[str] = opt("JSON list", json=True, default=[])
    steps: int | None = opt("budget", default=None)
    packing: bool = opt("pack rows", default=True)
    offload: bool = opt("offload", default=False)
    kind: str = opt("kind", default="toy", choices=["toy", "hub"])


def test_parse_types_defaults_and_required() -> None:
    a = cli.parse(Demo, ["--model", "m", "--lr", "1e-5", "--out", "a", "--out", "b",
                         "--spec", '{"n": 1}', "--spec", '{"n": 2}', "--tasks", '["x"]'])
    assert a == Demo(model="m", lr=1e-5, out=[Path("a"), Path("b")],
                     spec=[{"n": 1}, {"n": 2}], tasks=["x"])
    assert a.packing is True and a.offload is False and a.steps is None and a.kind == "toy"
    assert cli.parse(Demo, ["--model", "m", "--lr", "1", "--out", "a", "--no-packing",
                            "--offload"]).packing is False
    with pytest.raises(SystemExit):  # --lr is required
        cli.parse(Demo, ["--model", "m", "--out", "a"])
    with pytest.raises(SystemExit):  # choices are enforced
        cli.parse(Demo, ["--model", "m", "--lr", "1", "--out", "a", "--kind", "gguf"])


def test_to_argv_round_trip_and_default_skipping() -> None:
    a = Demo(model="m", lr=0.5, out=[Path("a")], spec=[{"n": 1}], tasks=["x", "y"], steps=3,
             packing=False, offload=True, kind="hub")
    argv = cli.to_argv(a)
    assert cli.parse(Demo, argv) == a
    assert "--no-packing" in argv and "--offload" in argv
    minimal = cli.to_argv(Demo(model="m", lr=0.5, out=[Path("a")]))
    assert minimal == ["--model", "m", "--lr", "0.5", "--out", "a"]


def test_help_is_the_docstring_and_field_help() -> None:
    text = cli.build_parser(Demo, prog="demo.py").format_help()
    assert "A demo entry point." in text and "--steps" in text and "run dirs" in text


@dataclass(kw_only=True)
class WithPositional:
    """Options and positional files."""

    out: str = opt("output")
    settings: str = opt("JSON settings", default="{}")
    files: list[str] = opt("input files", default=[], positional=True)


def test_positional_list_after_the_options() -> None:
    a = cli.parse(WithPositional, ["--out", "o", "a.tsv", "b.tsv"])
    assert a == WithPositional(out="o", files=["a.tsv", "b.tsv"])
    assert cli.parse(WithPositional, ["a.tsv", "--out", "o"]).files == ["a.tsv"]
    assert cli.parse(WithPositional, ["--out", "o"]).files == []
    assert cli.to_argv(a) == ["--out", "o", "a.tsv", "b.tsv"]
    assert cli.parse(WithPositional, cli.to_argv(a)) == a
    assert "input files" in cli.build_parser(WithPositional).format_help()


@dataclass(kw_only=True)
class Fixed:
    """Fixed-count lists."""

    figures: list[str] = opt("two figure paths", nargs=2)
    score_range: list[float] = opt("low high", nargs=2, default=[0.0, 100.0])
    csv: list[str] | None = opt("three CSV paths", nargs=3, default=None)


def test_fixed_nargs() -> None:
    a = cli.parse(Fixed, ["--figures", "a.png", "b.png"])
    assert a == Fixed(figures=["a.png", "b.png"]) and a.score_range == [0.0, 100.0]
    assert a.csv is None
    b = cli.parse(Fixed, ["--figures", "a", "b", "--score-range", "1", "2", "--csv", "x", "y", "z"])
    assert b.score_range == [1.0, 2.0] and b.csv == ["x", "y", "z"]
    assert cli.parse(Fixed, cli.to_argv(b)) == b
    with pytest.raises(SystemExit):  # exactly two
        cli.parse(Fixed, ["--figures", "a", "b", "c"])
    with pytest.raises(SystemExit):
        cli.parse(Fixed, ["--figures", "a"])
