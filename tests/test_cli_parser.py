"""The command line builds only the parser of the subcommand it runs (lumo_hydra/cli/parser.py,
``command_of``/``build_parser(argv)``): the same parse results, help and errors as the full parser, and
what ``pack``/``unpack`` import."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lumo_hydra.cli import build_parser, main
from lumo_hydra.cli.app import COMMANDS
from lumo_hydra.cli.parser import SUBCOMMANDS, command_of, parse


@pytest.mark.parametrize(("argv", "word"), [
    ([], None), (["--help"], None), (["--version"], None), (["list"], "list"), (["--root", "/r", "pack", "x"], "pack"),
    (["--root=/r", "show", "a"], "show"), (["--ro", "/r", "gc"], "gc"), (["--stale-after", "5", "logs"], "logs"),
    (["--stale", "5", "rm"], "rm"), (["--stale-after"], None), (["-5", "list"], "-5"), (["-x y", "list"], "-x y"),
    (["--", "list"], "--"), (["-", "list"], "-"), (["--weird", "list"], "list"), (["lisst"], "lisst"),
])
def test_command_of_finds_the_word_argparse_takes(argv: list[str], word: str | None) -> None:
    assert command_of(argv) == word


def test_only_the_named_subcommand_is_built() -> None:
    assert set(build_parser(["--root", "/r", "pack", "a", "-o", "x"]).subcommands) == {"pack"}  # type: ignore[attr-defined]
    assert set(build_parser().subcommands) == set(COMMANDS) == set(SUBCOMMANDS)  # type: ignore[attr-defined]
    light = build_parser(["--help"])
    assert set(light.subcommands) == set(COMMANDS)  # type: ignore[attr-defined]
    assert not light.subcommands["pack"]._actions[1:]  # type: ignore[attr-defined]  # one-line help only: -h


def _run(argv: list[str], parser_argv: list[str] | None, capsys: pytest.CaptureFixture[str]) -> tuple[object, str, str]:
    try:
        ns: object = sorted(vars(parse(build_parser(parser_argv), argv)).items())
    except SystemExit as e:
        ns = ("exit", e.code)
    got = capsys.readouterr()
    return ns, got.out, got.err


@pytest.mark.parametrize("argv", [
    [], ["--help"], ["-h"], ["--version"], ["lisst"], ["pakc", "x"], ["--root", "/r", "list"], ["--root=/r", "list", "--json"],
    ["--stale", "5", "show", "abc"], ["--ro", "/x", "list"], ["list", "--jsn"], ["list", "--status", "runing"],
    ["pack", "a", "b", "-o", "x.tar.gz", "--blobs", "--level", "1"], ["pack", "a"], ["unpack", "f", "--root", "/r", "--repo", "d"],
    ["tag", "r", "+a", "-b"], ["rerun", "r", "lr=1", "--x"], ["--", "list"], ["list", "--root", "/q", "--stale-after", "3"],
    ["backup", "r", "--exp", "e", "--github", "o/n"], ["board", "--port", "99999"], ["--stale-after", "-1", "list"],
    ["-5", "list"], ["-x y", "list"], ["--weird", "list"], ["list", "extra"], ["export", "--format", "xml"],
    *([c, "--help"] for c in COMMANDS),
])
def test_the_reduced_parser_parses_helps_and_fails_like_the_full_one(argv: list[str], capsys: pytest.CaptureFixture[str],
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    assert _run(argv, argv, capsys) == _run(argv, None, capsys)


def test_top_level_help_lists_every_command_with_its_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name, (kw, _) in SUBCOMMANDS.items():
        assert name in out and kw["help"][:30] in " ".join(out.split())
    assert main([]) == 0  # no command: the same help, exit code 0
    assert capsys.readouterr().out == out


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX store paths")
def test_pack_and_unpack_import_no_socket_datetime_rich_pandas_numpy(tmp_path: Path) -> None:
    info = tmp_path / "store" / "experiments" / "e" / "t1"
    info.mkdir(parents=True)
    (info / "run.json").write_text(json.dumps({"version": 1, "exp_name": "e", "test_name": "t1", "lock": None, "sweep": None}))
    heavy = ("socket", "datetime", "rich", "pandas", "numpy", "lumo_hydra.store.status", "lumo_hydra.watcher", "tarfile")
    code = ("import sys\nbefore = set(sys.modules)\nfrom lumo_hydra.cli import main\n"
            "assert main(sys.argv[1:]) == 0\nprint(' '.join(sorted(set(sys.modules) - before)))")
    env = {**os.environ, "LUMO_HOME": str(tmp_path / "store")}
    for argv in (["pack", "e/t1", "-o", str(tmp_path / "p.tar.gz"), "--no-code"],
                 ["unpack", str(tmp_path / "p.tar.gz"), "--no-code", "--root", str(tmp_path / "other")]):
        r = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, env=env, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        imported = set(r.stdout.split("\n")[-2].split())
        assert "lumo_hydra.share.pack" in imported
        assert not imported & set(heavy), argv
