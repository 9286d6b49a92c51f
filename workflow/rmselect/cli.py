"""Command lines declared once, as dataclasses.

Every entry point of the package declares its options as one dataclass (the idea of TRL's
``HfArgumentParser``): a field's name is its flag (``small_dir`` → ``--small-dir``), its type
the parser's ``type``, its default the default (no default: required), and :func:`opt` adds the
help text and choices. The class docstring is the ``--help`` description. The same declaration
turns a filled-in instance back into a command line (:func:`to_argv`), so a rule's flags can be
derived from the fields the entry point reads instead of being written out a second time.

Type mapping: ``bool`` is a switch (``--x``; ``--x/--no-x`` when the default is true),
``list[T]`` takes one or more values (``nargs="+"``; zero or more when it has a default;
exactly ``n`` with ``opt(nargs=n)``; or repeated flags with ``opt(repeat=True)``),
``dict``/``list`` of JSON (``opt(json=True)``) parse one JSON argument,
``T | None`` is optional with default None; ``opt(positional=True)`` makes a field a
positional argument (no flag; a ``list`` one takes its values after the options). Declare the
class ``@dataclass(kw_only=True)`` so that required and defaulted fields can stand in any order.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import logging
import sys
import types
import typing
from typing import Any, Callable, Sequence, TypeVar

T = TypeVar("T")

LOG_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"


def opt(help: str = "", *, default: Any = dataclasses.MISSING, choices: Sequence[Any] | None = None,
        repeat: bool = False, json: bool = False, metavar: str | None = None,
        nargs: int | None = None, positional: bool = False) -> Any:
    """A dataclass field with command-line metadata (no ``default``: the flag is required).

    ``repeat``: a list field given as a repeated flag (``--out A --out B``);
    ``nargs``: a list field that takes exactly this many values (``--figures A B``);
    ``json``: the value is one JSON argument (``--models '["a", "b"]'``); with ``repeat``,
    each repeated value is one JSON argument; ``positional``: a positional argument named
    after the field (``build.py --out x a.tsv b.tsv``).
    """
    meta = {"help": help, "choices": choices, "repeat": repeat, "json": json, "metavar": metavar,
            "nargs": nargs, "positional": positional}
    if isinstance(default, (list, dict)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def flag_name(field_name: str) -> str:
    """``small_dir`` → ``--small-dir``."""
    return "--" + field_name.replace("_", "-")


def _unwrap(tp: Any) -> tuple[Any, bool]:
    """``X | None`` → ``(X, True)``; anything else → ``(tp, False)``."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else typing.Union[tuple(rest)]), True
    return tp, False


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _add(parser: argparse.ArgumentParser, f: dataclasses.Field, tp: Any) -> None:
    meta = f.metadata
    base, _ = _unwrap(tp)
    default = _default(f)
    kw: dict[str, Any] = {"dest": f.name, "help": meta.get("help", "")}
    if meta.get("metavar"):
        kw["metavar"] = meta["metavar"]
    if default is dataclasses.MISSING:
        kw["required"] = True
    else:
        kw["default"] = default
    if base is bool:
        kw.pop("metavar", None)
        kw["action"] = argparse.BooleanOptionalAction if default is True else "store_true"
        kw.setdefault("default", False)
        kw.pop("required", None)
    elif meta.get("json") and not meta.get("repeat"):
        kw["type"] = json.loads
    elif typing.get_origin(base) is list:
        (item,) = typing.get_args(base) or (str,)
        kw["type"] = json.loads if meta.get("json") else item
        if meta.get("repeat"):
            kw["action"] = "append"
            if default is not dataclasses.MISSING:
                kw["default"] = None  # argparse appends to a given default list
        else:
            kw["nargs"] = meta.get("nargs") or ("+" if default is dataclasses.MISSING else "*")
    else:
        kw["type"] = base
    if meta.get("choices") is not None:
        kw["choices"] = list(meta["choices"])
    if meta.get("positional"):
        del kw["dest"]  # a positional's dest is its name
        if not kw.pop("required", False) and "nargs" not in kw:
            kw["nargs"] = "?"
        parser.add_argument(f.name, **kw)
        return
    parser.add_argument(flag_name(f.name), **kw)


def build_parser(cls: type, prog: str | None = None,
                 description: str | None = None) -> argparse.ArgumentParser:
    """The argparse parser of the options dataclass ``cls`` (description: its docstring)."""
    doc = description if description is not None else inspect.cleandoc(cls.__doc__ or "")
    parser = argparse.ArgumentParser(
        prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.init:
            _add(parser, f, hints[f.name])
    return parser


def parse(cls: type[T], argv: Sequence[str] | None = None, prog: str | None = None) -> T:
    """Parse ``argv`` (default: ``sys.argv[1:]``) into an instance of ``cls``."""
    ns = build_parser(cls, prog).parse_args(argv)
    values = vars(ns)
    for f in dataclasses.fields(cls):
        if f.metadata.get("repeat") and values.get(f.name) is None:
            values[f.name] = _default(f)
    return cls(**values)


def setup_logging(level: int = logging.INFO) -> None:
    """One log format on stderr for every entry point (each job's stderr is its log)."""
    logging.basicConfig(level=level, stream=sys.stderr, format=LOG_FORMAT)


def run(cls: type[T], body: Callable[[T], int | None], argv: Sequence[str] | None = None,
        prog: str | None = None) -> int:
    """Parse ``argv`` into ``cls``, set up logging and call ``body``; its return is the exit status."""
    args = parse(cls, argv, prog)
    setup_logging()
    status = body(args)
    return 0 if status is None else int(status)


def to_argv(obj: Any, *, skip_defaults: bool = True, exclude: Sequence[str] = ()) -> list[str]:
    """The command line that :func:`parse` turns back into ``obj`` (declaration order).

    With ``skip_defaults`` a field equal to its default adds no flag, so a new option with a
    default leaves existing command lines (and the jobs whose parameters they are) unchanged.
    ``exclude`` names fields left out (a rule adds them itself: output paths, resource-tier
    values only known per job). Positional fields come last, in declaration order.
    """
    out: list[str] = []
    tail: list[str] = []
    for f in dataclasses.fields(obj):
        if not f.init or f.name in exclude:
            continue
        value = getattr(obj, f.name)
        default = _default(f)
        if f.metadata.get("positional"):
            if value is not None:
                tail += list(map(str, value)) if isinstance(value, (list, tuple)) else [str(value)]
            continue
        if skip_defaults and default is not dataclasses.MISSING and value == default:
            continue
        name = flag_name(f.name)
        if isinstance(value, bool):
            out += [name] if value else ([f"--no-{name[2:]}"] if default is True else [])
        elif value is None:
            continue
        elif f.metadata.get("json") and not f.metadata.get("repeat"):
            out += [name, json.dumps(value, sort_keys=True)]
        elif isinstance(value, (list, tuple)):
            if f.metadata.get("repeat"):
                for v in value:
                    text = json.dumps(v, sort_keys=True) if f.metadata.get("json") else str(v)
                    out += [name, text]
            else:
                out += [name, *map(str, value)]
        else:
            out += [name, str(value)]
    return out + tail


def split_command(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None,
                  what: str = "command") -> tuple[argparse.Namespace, list[str]]:
    """Parse the options before ``--``; what follows is the command a wrapper runs
    (``launch.py --nproc 2 -- python train_rm.py ...``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        parser.error(f"give the {what} after --")
    cut = argv.index("--")
    return parser.parse_args(argv[:cut]), argv[cut + 1:]
