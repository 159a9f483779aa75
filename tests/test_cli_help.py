"""`cyclegan ... --help` for every command, found by walking the parser: exits 0 with a usage line,
imports no torch, numpy or PIL, and is fast. And the shared option vocabulary of `cli/options.py`:
one spelling and one meaning per option, deprecated spellings still working."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from cyclegan.cli import build_parser, main, options

from helpers import cli_environ

HEAVY = ("torch", "numpy", "PIL")
HELP_SECONDS = 3.0  # generous: a --help that imports torch takes several seconds
# Every command takes its shared options from cli/options.py (train's --run-dir is the run dir that
# --resume DIR and `evaluate run` name, not an output location of its own kind).
IMPORTS_TORCH: set[str] = set()
OWN_OPTIONS: set[str] = set()


def walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """(command path, parser) for the top level and every sub-command, nested ones included."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from walk(sub, (*path, name))


COMMANDS = dict(walk(build_parser()))


def test_the_walk_finds_nested_commands():
    for path in [("evaluate", "run"), ("datasets", "download"), ("pretrained", "list"), ("reproduce",),
                 ("export",), ("translate",), ("serve",), ("style-transfer",), ("demo",)]:
        assert path in COMMANDS, path


def imported_packages(importtime_stderr: str) -> set[str]:
    """Top-level packages in `python -X importtime` output (`import time: self | cumulative | name`)."""
    return {line.rsplit("|", 1)[1].strip().split(".")[0] for line in importtime_stderr.splitlines()
            if line.startswith("import time:") and "|" in line}


@pytest.mark.parametrize("path", list(COMMANDS), ids=lambda p: " ".join(p) or "cyclegan")
def test_help_is_fast_and_imports_no_torch(path):
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "cyclegan", *path, "--help"],
                            capture_output=True, text=True, timeout=120, env=cli_environ())
    seconds = time.perf_counter() - start
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith(f"usage: {' '.join(['cyclegan', *path])} "), result.stdout[:200]
    if path[:1] and path[0] in IMPORTS_TORCH:
        return
    heavy = imported_packages(result.stderr) & set(HEAVY)
    assert not heavy, f"`cyclegan {' '.join(path)} --help` imports {', '.join(sorted(heavy))}"
    assert seconds < HELP_SECONDS, f"`cyclegan {' '.join(path)} --help` took {seconds:.1f} s"


def test_help_in_process_leaves_no_torch_behind():
    """The same through `main`, as the console script calls it."""
    code = ("import sys\nfrom cyclegan.cli import main\ntry:\n    main(['evaluate', 'run', '--help'])\n"
            "except SystemExit:\n    pass\nprint('HEAVY:', *[m for m in ('torch', 'numpy', 'PIL') if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=cli_environ())
    assert result.returncode == 0 and result.stdout.splitlines()[-1] == "HEAVY:", result.stdout[-300:]


# ---------------------------------------------------------------------------------------------------
# One vocabulary


def visible(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.help is not argparse.SUPPRESS]


def shared(path: tuple[str, ...]) -> bool:
    return not (path[:1] and path[0] in OWN_OPTIONS)


OUTPUT_DESTS = {"out", "out_dir", "output", "output_dir", "outdir", "dest", "destination"}


@pytest.mark.parametrize("path", [p for p in COMMANDS if shared(p)], ids=" ".join)
def test_the_output_location_is_called_out(path):
    for action in visible(COMMANDS[path]):
        if action.dest in OUTPUT_DESTS or str(action.metavar).upper() in ("OUT", "OUT_DIR", "OUTPUT"):
            assert action.option_strings == ["--out"], (path, action.option_strings or action.metavar)
        assert not {"--out-dir", "--output", "--output-dir", "--outdir", "-o"} & set(action.option_strings), path


def actions(option: str) -> list[tuple[tuple[str, ...], argparse.Action]]:
    return [(path, a) for path, p in COMMANDS.items() for a in visible(p) if option in a.option_strings]


def test_every_device_option_has_the_same_help():
    found = actions("--device")
    assert len(found) >= 8
    for path, action in found:
        if shared(path) or path == ("train",):
            assert action.help == options.DEVICE_HELP, path


def test_precision_is_one_option_with_the_config_choices():
    found = actions("--precision")
    assert {p for p, _ in found} >= {("translate",), ("reproduce",)}
    for path, action in found:
        assert tuple(action.choices) == options.PRECISIONS, path
        assert action.help.startswith(options.PRECISION_HELP), path


def test_dataroot_is_a_positional_with_one_help():
    found = [(path, a) for path, p in COMMANDS.items() if shared(path) for a in visible(p) if a.dest == "dataroot"]
    assert {p for p, _ in found} >= {("reproduce",), ("evaluate", "run")}
    for path, action in found:
        assert not action.option_strings and action.metavar == "DATAROOT", path
        assert action.help.startswith(options.DATAROOT_HELP), path
    assert not actions("--data") and not actions("--dataroot")


def test_max_images_has_one_meaning():
    found = actions("--max-images")
    assert {p for p, _ in found} >= {("reproduce",), ("evaluate", "run"), ("evaluate", "paired")}
    for path, action in found:
        assert action.help == options.MAX_IMAGES_HELP and action.type is options.positive_int, path
    assert not actions("--max-test")


def test_resume_names_the_run_dir():
    for path, action in actions("--resume"):
        if shared(path) or path == ("train",):
            assert action.metavar == "DIR", path


def deprecated() -> list[tuple[tuple[str, ...], argparse.Action]]:
    return [(path, a) for path, p in COMMANDS.items() for a in p._actions if isinstance(a, options._DeprecatedAlias)]


def test_deprecated_spellings_are_hidden_and_store_into_the_new_option(capsys):
    found = deprecated()
    assert {(p, a.option_strings[0]) for p, a in found} >= {
        (("reproduce",), "--data"), (("reproduce",), "--max-test"), (("evaluate", "run"), "--data"),
        (("datasets", "download"), "--root")}
    for path, alias in found:
        assert alias.help is argparse.SUPPRESS
        assert any(a.dest == alias.dest for a in visible(COMMANDS[path])), (path, alias.option_strings)
        namespace = argparse.Namespace()
        alias(COMMANDS[path], namespace, "7", alias.option_strings[0])
        assert getattr(namespace, alias.dest) == "7"
        err = capsys.readouterr().err
        assert err == f"cyclegan: warning: {alias.option_strings[0]} is deprecated; use {alias.use}\n"


@pytest.mark.parametrize("argv, expected", [
    (["reproduce", "ablation", "--data", "D", "--out", "O", "--max-test", "3"], {"dataroot": "D", "max_images": 3}),
    (["reproduce", "--data", "D", "ablation", "--out", "O"], {"dataroot": "D"}),  # before the positionals too
    (["reproduce", "ablation", "D", "--out", "O"], {"dataroot": "D"}),
    (["evaluate", "run", "runs/x", "--data", "D"], {"dataroot": "D"}),
    (["evaluate", "run", "runs/x"], {"dataroot": None}),
    (["datasets", "download", "maps", "--root", "R"], {"out": "R"}),
    (["datasets", "download", "maps"], {"out": "datasets"}),
])
def test_old_and_new_spellings_parse_alike(argv, expected):
    args = build_parser().parse_args(argv)
    assert {k: getattr(args, k) for k in expected} == expected


def test_a_deprecated_spelling_works_end_to_end(tmp_path):
    """`reproduce --data DIR` warns, and DIR reaches the library (which reports that it does not exist)."""
    result = subprocess.run([sys.executable, "-m", "cyclegan", "reproduce", "ablation", "--data", str(tmp_path / "nope"),
                             "--out", str(tmp_path / "out"), "--variants", "CycleGAN", "--no-progress"],
                            capture_output=True, text=True, timeout=120, env=cli_environ())
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1, result.stderr
    assert lines[0] == "cyclegan: warning: --data is deprecated; use DATAROOT (a positional argument)"
    assert lines[-1].startswith("cyclegan: error:") and "nope" in lines[-1]


def test_reproduce_needs_a_dataroot(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["reproduce", "ablation", "--out", "o"])
    assert exit.value.code == 2 and "DATAROOT is required" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------
# Choices from the library's tables


def test_torch_free_names_agree_with_the_tables_that_implement_them():
    from cyclegan import deploy, names, precision, style_transfer
    from cyclegan.inference import loading
    from cyclegan.nn import features

    assert names.DIRECTIONS == tuple(loading.DIRECTIONS)
    assert names.FEATURE_NETWORKS == tuple(features.FEATURE_NETWORKS)
    assert names.EXPORT_FORMATS == ("official", "safetensors", "hf", *deploy.FORMATS)
    assert style_transfer.OPTIMIZERS is names.STYLE_OPTIMIZERS
    assert options.PRECISIONS == tuple(precision.PRECISIONS)


def test_help_lists_the_tables():
    from cyclegan.config import list_presets
    from cyclegan.experiments import EXPERIMENTS
    from cyclegan.hub import DATASETS
    from cyclegan.names import PRETRAINED

    def text(*path: str) -> str:
        return " ".join(COMMANDS[path].format_help().split())  # unwrapped

    assert all(name in text("translate") for name in PRETRAINED)
    assert all(name in text("pretrained", "download") for name in PRETRAINED)
    assert all(name in text("datasets", "download") for name in DATASETS)
    assert all(name in text("reproduce") for name in [*list_presets(), *EXPERIMENTS["baselines"]])
