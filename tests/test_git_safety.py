"""Every git call of lumo-hydra runs none of the user's programs: hooks, file-system monitor, pager, editor,
external diff, textconv; and no module but lumo_hydra/record/gitsnap.py (and its runner gitrun.py) runs
git. Real repositories in tmp folders. Where plain git can be made to run the program (hooks, monitor, external diff), the test shows it
first, so that it cannot pass by never triggering the program."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import git

import lumo_hydra
from lumo_hydra.record import gitsnap
from lumo_hydra.record.gitsnap import (
    delete_ref,
    diff,
    list_refs,
    read_snapshot_file,
    remove_worktree,
    snapshot,
    snapshot_files,
    worktree,
)
from lumo_hydra.store.layout import REF_NAMESPACE

PACKAGE = Path(lumo_hydra.__file__).parent


def _script(path: Path, marker: Path, exit_code: int = 0) -> Path:
    """An executable that appends its name and arguments to ``marker``, then exits with ``exit_code``."""
    path.write_text(f"#!/bin/sh\necho \"$0 $*\" >> '{marker}'\nexit {exit_code}\n")
    path.chmod(0o755)
    return path


def _two_snapshots(repo: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    (repo / "train.py").write_text("print('A')\n")
    a = snapshot(repo)
    (repo / "train.py").write_text("print('B')\n")
    b = snapshot(repo)
    assert a["commit"] and b["commit"], (a["msg"], b["msg"])
    return a, b


def _every_operation(repo: Path, tmp_path: Path) -> None:
    """Each public git operation of gitsnap once, with its result checked."""
    a, b = _two_snapshots(repo)
    assert "-print('A')" in diff(repo, a["commit"], b["commit"])
    dest = tmp_path / "wt"
    worktree(repo, a["commit"], dest)
    assert (dest / "train.py").read_text() == "print('A')\n"
    remove_worktree(repo, dest)
    assert not dest.exists()
    assert {(a["commit"], a["ref"]), (b["commit"], b["ref"])} <= set(list_refs(repo))
    delete_ref(repo, a["ref"], a["commit"])
    names = [name for _, name in list_refs(repo)]
    assert a["ref"] not in names and b["ref"] in names
    assert "train.py" in snapshot_files(repo, b["commit"])
    assert read_snapshot_file(repo, b["commit"], "train.py") == b"print('B')\n"


def test_failing_post_checkout_hook_does_not_fail_worktree(git_repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "hook-ran"
    for h in ("post-checkout", "reference-transaction"):
        _script(git_repo / ".git" / "hooks" / h, marker, exit_code=1)
    head = git(git_repo, "rev-parse", "HEAD").strip()
    # plain git: the hooks run and fail the checkout
    plain = subprocess.run(["git", "worktree", "add", "--detach", str(tmp_path / "plain"), head], cwd=git_repo,
                           capture_output=True, text=True)
    assert plain.returncode != 0 and marker.exists(), plain
    marker.unlink()
    (git_repo / "train.py").write_text("print('snapshot')\n")
    snap = snapshot(git_repo)
    assert snap["commit"], snap["msg"]
    dest = tmp_path / "checkout"
    worktree(git_repo, snap["commit"], dest)
    assert (dest / "train.py").read_text() == "print('snapshot')\n"
    assert git(dest, "rev-parse", "HEAD").strip() == snap["commit"]
    assert git(dest, "status", "--porcelain") == ""
    remove_worktree(git_repo, dest)
    assert not dest.exists() and str(dest) not in git(git_repo, "worktree", "list")
    assert not marker.exists()


def test_fsmonitor_program_never_runs(git_repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "fsmonitor-ran"
    git(git_repo, "config", "core.fsmonitor", str(_script(tmp_path / "fsmonitor.sh", marker, exit_code=1)))
    git(git_repo, "status", "--porcelain")  # plain git runs the monitor
    assert marker.exists()
    marker.unlink()
    _every_operation(git_repo, tmp_path)
    assert not marker.exists(), marker.read_text()


def test_hooks_path_hooks_never_run(git_repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "hook-ran"
    hooks = tmp_path / "my-hooks"
    hooks.mkdir()
    for h in ("reference-transaction", "post-checkout", "post-index-change", "pre-commit", "post-commit",
              "pre-auto-gc", "post-rewrite"):
        _script(hooks / h, marker)
    git(git_repo, "config", "core.hooksPath", str(hooks))
    head = git(git_repo, "rev-parse", "HEAD").strip()
    git(git_repo, "update-ref", "refs/lumo/control", head)  # plain git runs reference-transaction
    git(git_repo, "update-ref", "-d", "refs/lumo/control")
    assert "reference-transaction" in marker.read_text()
    marker.unlink()
    _every_operation(git_repo, tmp_path)
    s = snapshot(git_repo)
    delete_ref(git_repo, s["ref"])
    assert not marker.exists(), marker.read_text()


def test_pager_editor_external_diff_and_textconv_never_run(git_repo: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "program-ran"
    bad = str(_script(tmp_path / "bad.sh", marker, exit_code=1))
    for key in ("core.pager", "core.editor", "sequence.editor", "diff.external", "diff.conv.textconv",
                "pager.diff"):
        git(git_repo, "config", key, bad)
    (git_repo / ".gitattributes").write_text("*.py diff=conv\n")
    git(git_repo, "add", ".gitattributes")
    git(git_repo, "commit", "-q", "-m", "attributes")
    for var in ("GIT_PAGER", "PAGER", "GIT_EDITOR", "EDITOR", "VISUAL", "GIT_SEQUENCE_EDITOR", "GIT_EXTERNAL_DIFF"):
        monkeypatch.setenv(var, bad)
    plain = subprocess.run(["git", "diff", "HEAD~1", "HEAD"], cwd=git_repo, capture_output=True)
    assert marker.exists(), plain  # plain git runs the external diff
    marker.unlink()
    _every_operation(git_repo, tmp_path)
    a, b = _two_snapshots(git_repo)
    text = diff(git_repo, a["commit"], b["commit"])
    assert text.startswith("diff --git a/train.py b/train.py") and "+print('B')" in text
    assert not marker.exists(), marker.read_text()


def test_every_git_process_gets_the_safety_options(git_repo: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Raw calls and GitPython's alike: ``git <_GIT_OPTS> ...`` with ``_SAFE_ENV`` (GitPython's own
    ``git version`` probe, which runs nothing of the user's, is the only other call)."""
    seen: list[tuple[list[str], dict[str, str]]] = []
    real_init = subprocess.Popen.__init__

    def spy(self: subprocess.Popen[Any], args: Any, *a: Any, **kw: Any) -> None:
        seen.append((list(args), dict(kw.get("env") or os.environ)))
        real_init(self, args, *a, **kw)

    monkeypatch.setattr(subprocess.Popen, "__init__", spy)
    _every_operation(git_repo, tmp_path)
    monkeypatch.undo()
    opts = list(gitsnap._GIT_OPTS)
    assert "--no-pager" in opts and f"core.hooksPath={os.devnull}" in opts and "core.fsmonitor=" in opts
    calls = [(argv, env) for argv, env in seen if argv[1:] != ["version"]]

    def command(argv: list[str]) -> str:  # the git command after the safety options and any more "-c k=v"
        rest = argv[len(opts) + 1:]
        while rest[:1] == ["-c"]:
            assert rest[1] in ("core.untrackedCache=true", "user.useConfigOnly=true"), argv  # scan, commit-tree
            rest = rest[2:]
        return rest[0]

    assert {command(argv) for argv, _ in calls} >= {"status", "update-ref", "diff", "worktree",
                                                     "for-each-ref", "cat-file"}
    for argv, env in calls:
        assert os.path.basename(argv[0]) == "git" and argv[1:len(opts) + 1] == opts, argv
        safe = dict(gitsnap._SAFE_ENV)
        if command(argv) == "status":  # the snapshot's scan may write the refreshed *private* index
            assert env["GIT_INDEX_FILE"].endswith(".tmp")
            del safe["GIT_OPTIONAL_LOCKS"]
        assert {k: env.get(k) for k in safe} == safe, argv
        assert "GIT_EXTERNAL_DIFF" not in env


def test_delete_ref_of_a_symbolic_ref_keeps_the_branch(git_repo: Path) -> None:
    """``update-ref -d`` without ``--no-deref`` would delete the branch a symbolic ref points to."""
    head = git(git_repo, "rev-parse", "refs/heads/main").strip()
    git(git_repo, "symbolic-ref", "refs/lumo/snapshots/sym", "refs/heads/main")
    delete_ref(git_repo, "refs/lumo/snapshots/sym")
    assert git(git_repo, "rev-parse", "refs/heads/main").strip() == head
    assert "refs/lumo/snapshots/sym" not in git(git_repo, "for-each-ref")
    assert not (git_repo / ".git" / "refs" / "lumo" / "snapshots" / "sym").exists()


@pytest.mark.parametrize("call", [
    lambda r: diff(r, f"--output={r.parent / 'written'}", "HEAD"),
    lambda r: worktree(r, "--orphan", r.parent / "wt-opt"),
    lambda r: delete_ref(r, f"{REF_NAMESPACE}x", "--stdin"),
    lambda r: snapshot_files(r, "-h"),
    lambda r: read_snapshot_file(r, "--all", "train.py"),
], ids=["diff", "worktree", "delete_ref", "snapshot_files", "read_snapshot_file"])
def test_values_starting_with_a_dash_are_not_git_options(git_repo: Path, call: Any) -> None:
    with pytest.raises(gitsnap.GitError, match="invalid .*'-") as ei:
        call(git_repo)
    assert isinstance(ei.value, ValueError)
    assert not (git_repo.parent / "written").exists() and not (git_repo.parent / "wt-opt").exists()


def test_snapshot_and_raw_calls_do_not_import_gitpython(git_repo: Path, tmp_path: Path) -> None:
    code = (
        "import sys\nfrom lumo_hydra.record.gitsnap import snapshot, diff, list_refs, worktree, remove_worktree\n"
        f"r = snapshot({str(git_repo)!r}); assert r['commit'], r\n"
        f"diff({str(git_repo)!r}, r['commit'], 'HEAD'); list_refs({str(git_repo)!r})\n"
        f"worktree({str(git_repo)!r}, r['commit'], {str(tmp_path / 'wt')!r})\n"
        f"remove_worktree({str(git_repo)!r}, {str(tmp_path / 'wt')!r})\n"
        "print(sorted(m for m in sys.modules if m == 'git' or m.startswith(('git.', 'gitdb'))))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# -- no module but record/gitsnap.py and gitrun.py runs git ------------------------------------------
# NOTE: this test fails until lumo_hydra/cli/ calls gitsnap's list_refs / delete_ref / remove_worktree
# instead of running `git for-each-ref`, `git update-ref -d` and `git worktree remove/prune` itself
# (issue 10, point 3; the CLI engineer rewires it).
_RUNNERS = {"run", "Popen", "call", "check_call", "check_output", "getoutput", "getstatusoutput",
            "system", "popen", "execv", "execvp", "execvpe", "execl", "execlp", "spawnv", "spawnvp", "which"}


def _names_git(node: ast.AST) -> bool:
    """A literal that starts a git command line: "git", ".../git", "git ..." or a list/tuple led by one."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        v = node.value.strip()
        return v == "git" or v.endswith("/git") or v.startswith("git ")
    if isinstance(node, ast.JoinedStr) and node.values:
        return _names_git(node.values[0])
    if isinstance(node, (ast.List, ast.Tuple)) and node.elts:
        return _names_git(node.elts[0])
    return False


def _git_calls(path: Path) -> list[str]:
    """``"<line>: <what>"`` for each line of ``path`` that imports GitPython, spells a git command line
    (a list or tuple led by "git") or passes one to a process runner (subprocess, os.system, which)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: dict[int, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if any(m == "git" or m.startswith(("git.", "gitdb")) for m in mods):
                found.setdefault(node.lineno, "imports GitPython")
        elif isinstance(node, (ast.List, ast.Tuple)) and _names_git(node):
            found.setdefault(node.lineno, f"a git command line {ast.unparse(node)[:60]}")
        elif isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            if name in _RUNNERS and any(_names_git(a) for a in [*node.args, *(k.value for k in node.keywords)]):
                found.setdefault(node.lineno, ast.unparse(node)[:80])
    return [f"{line}: {what}" for line, what in sorted(found.items())]


def test_the_git_check_finds_git_calls(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import subprocess, shutil, os\nfrom subprocess import run\nimport git\n"
                      "subprocess.run(['git', 'status'])\nrun(('git', 'x'))\nos.system('git gc')\n"
                      "argv = ['git', 'log']\nshutil.which('git')\nsubprocess.run(['python', '-c', 'git'])\n"
                      "print('git -C repo worktree remove')\n")
    found = _git_calls(sample)
    assert [f.split(":")[0] for f in found] == ["3", "4", "5", "6", "7", "8"], found


def test_no_module_but_gitsnap_runs_git() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path in (PACKAGE / "record" / "gitsnap.py", PACKAGE / "record" / "gitrun.py"):
            continue
        offenders += [f"{path.relative_to(PACKAGE)}: {f}" for f in _git_calls(path)]
    assert offenders == [], "git runs only through lumo_hydra/record/gitsnap.py and gitrun.py:\n" + "\n".join(offenders)


def test_gitsnap_starts_processes_only_in_run_and_spawn() -> None:
    """One shared mechanism: every subprocess of gitsnap and gitrun is started by gitrun's ``_run`` or
    ``_spawn``."""
    owners = []
    for name in ("gitsnap.py", "gitrun.py"):
        owners += [f"{name}:{fn}" for fn in _process_starters(PACKAGE / "record" / name)]
    assert sorted(owners) == ["gitrun.py:_run", "gitrun.py:_spawn"]


def _process_starters(src: Path) -> list[str]:
    """The functions of ``src`` that call a ``subprocess`` runner."""
    tree = ast.parse(src.read_text(encoding="utf-8"))
    owners = []
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef):
            for node in ast.walk(fn):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and isinstance(node.func.value, ast.Name) and node.func.value.id == "subprocess"
                        and node.func.attr in _RUNNERS):
                    owners.append(fn.name)
    return owners
