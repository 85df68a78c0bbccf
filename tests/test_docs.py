"""The ```python blocks of README.md and docs/*.md run, as a reader would run them.

Each page's blocks run in order in one fresh Python process (one namespace per page, so a block may use
what an earlier block of the same page defined), with the current folder, ``HOME``, ``LUMO_HOME`` and
``LUMO_CACHE_DIR`` in a temporary folder, warnings as errors, and a time limit. Each block is one test,
named ``<page>:<line of its opening fence>``; a traceback names the page and the line in it.

HTML comments on the lines right above a block's fence change how it runs (several may be stacked):

- ``<!-- no-test: <reason> -->``: not run (reported as skipped with the reason). Keep these few.
- ``<!-- test-as-script: <file> [args...] -->``: the block is written to ``<file>`` in the page's folder
  and run there as ``python <file> args...`` (a Hydra app run from the command line); it must exit 0.
- ``<!-- test-file: <path> -->``: the block (any language, e.g. a YAML config) is written to ``<path>``
  in the page's folder, for the blocks after it.
- ``<!-- test-before: <command> -->``: the command runs in the page's folder before the block and must
  exit 0; ``python`` is the test's interpreter and ``{repo}`` the repository root (e.g. an example app
  that records the runs a block then reads).
- ``<!-- test-output -->`` above a non-python block (the output a reader sees): every line of it must
  appear in what the previous block printed (stdout and stderr), except lines starting with ``$ `` (the
  command shown) and ``...`` lines.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PAGE_TIMEOUT = 600  # seconds for all blocks of one page
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>[\w+-]*)\s*$")
DIRECTIVE = re.compile(r"^\s*<!--\s*(?P<kind>[\w-]+)\s*(?::\s*(?P<arg>.*?))?\s*-->\s*$")
KINDS = ("no-test", "test-as-script", "test-file", "test-before", "test-output")


@dataclass(frozen=True)
class Block:
    """One block of a page that the test runs (every ```python block, and blocks marked test-file)."""

    page: str                                 # path relative to the repository root
    line: int                                 # line number of the opening fence
    code: str
    skip: str | None = None                   # the no-test reason
    script: tuple[str, ...] = ()              # test-as-script: (file, *args)
    file: str | None = None                   # test-file: where the block's text goes
    before: tuple[tuple[str, ...], ...] = ()  # test-before commands
    output: bool = False                      # test-output: the expected output of the previous block

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def _directives(lines: list[str], fence: int, page: str, problems: list[str]) -> dict[str, list[str]]:
    """The directives on the comment lines right above line index ``fence``, by kind."""
    found: dict[str, list[str]] = {}
    i = fence - 1
    while i >= 0 and lines[i].lstrip().startswith("<!--"):
        d = DIRECTIVE.match(lines[i])
        if d and d["kind"] in KINDS:
            if not d["arg"] and d["kind"] != "test-output":
                problems.append(f"{page}:{i + 1}: {d['kind']} needs an argument: <!-- {d['kind']}: ... -->")
            found.setdefault(d["kind"], []).insert(0, d["arg"] or "")
        elif re.match(r"^\s*<!--\s*(no-test|test-)", lines[i]):
            problems.append(f"{page}:{i + 1}: unknown test directive {lines[i].strip()!r}")
        i -= 1
    return found


def parse_page(text: str, page: str) -> tuple[list[Block], list[str]]:
    """The blocks of a markdown text that the test runs, and the problems found in its test directives."""
    lines = text.splitlines()
    blocks: list[Block] = []
    problems: list[str] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start = i
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            i += 1
        if i == len(lines):
            problems.append(f"{page}:{start + 1}: the block is never closed")
        code = textwrap.dedent("\n".join(lines[start + 1:i])) + "\n"
        i += 1
        found = _directives(lines, start, page, problems)
        if m["lang"] != "python" and "test-file" not in found and "test-output" not in found:
            continue
        if "test-output" in found and (m["lang"] == "python" or not blocks):
            problems.append(f"{page}:{start}: test-output goes above the output block that follows a block")
        script = tuple(shlex.split(found["test-as-script"][0])) if "test-as-script" in found else ()
        if "test-as-script" in found and not (script and script[0].endswith(".py")):
            problems.append(f"{page}:{start}: test-as-script needs a file name: <!-- test-as-script: app.py ARGS -->")
        blocks.append(Block(page, start + 1, code, skip=(found.get("no-test") or [None])[0], script=script,
                            file=(found.get("test-file") or [None])[0],
                            before=tuple(tuple(shlex.split(c)) for c in found.get("test-before", [])),
                            output="test-output" in found))
    return blocks, problems


def all_blocks() -> list[Block]:
    return [b for p in PAGES for b in parse_page(p.read_text(encoding="utf-8"), p.relative_to(ROOT).as_posix())[0]]


# Runs one page: argv[1] is the plan (JSON: page text and blocks), argv[2] the results file (JSON, rewritten
# after every block). Blocks share one namespace; tracebacks point into the page (linecache holds its text).
DRIVER = r'''
import json, linecache, os, subprocess, sys, traceback

plan_file, results_file = sys.argv[1:3]
with open(plan_file, encoding="utf-8") as f:
    plan = json.load(f)
results = {}
page = plan["page"]
linecache.cache[page] = (len(plan["text"]), None, plan["text"].splitlines(True), page)
namespace = {"__name__": "__main__", "__file__": os.path.abspath("page.py")}


def save():
    with open(results_file + ".tmp", "w", encoding="utf-8") as f:
        json.dump(results, f)
    os.replace(results_file + ".tmp", results_file)


class Tee:
    """Writes to the real stream and keeps a copy (what the block printed, for test-output)."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text):
        captured.append(text)
        return self.stream.write(text)

    def __getattr__(self, name):
        return getattr(self.stream, name)


captured = []
sys.stdout, sys.stderr = Tee(sys.stdout), Tee(sys.stderr)


def command(args):
    args = [a.replace("{repo}", plan["repo"]) for a in args]
    proc = subprocess.run([sys.executable, *plan["python_flags"], *args[1:]] if args[0] == "python" else args,
                          capture_output=True, text=True)
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited with {proc.returncode}:\n" + proc.stderr[-6000:])


def check_output(expected, printed):
    missing = [line.strip() for line in expected.splitlines()
               if line.strip() and not line.startswith(("$ ", "...")) and line.strip() not in printed]
    if missing:
        raise AssertionError("the previous block did not print these lines of the page:\n  " + "\n  ".join(missing)
                             + "\nit printed:\n" + printed[-6000:])


def write(name, text):
    os.makedirs(os.path.dirname(name) or ".", exist_ok=True)
    with open(name, "w", encoding="utf-8") as f:
        f.write(text)


failed = None
for block in plan["blocks"]:
    line = str(block["line"])
    if failed is not None:
        results[line] = {"status": "not run", "error": f"not run: the block at {page}:{failed} failed first"}
        continue
    print(f"===== {page}:{line}", flush=True)
    print(f"===== {page}:{line}", file=sys.stderr, flush=True)
    printed, captured[:] = "".join(captured), []
    try:
        for args in block["before"]:
            command(args)
        if block["output"]:
            check_output(block["code"], printed)
        elif block["file"]:
            write(block["file"], block["code"])
        elif block["script"]:
            write(block["script"][0], block["code"])
            command(["python", *block["script"]])
        else:
            sys.argv = [page]
            exec(compile("\n" * block["line"] + block["code"], page, "exec"), namespace)
        results[line] = {"status": "passed"}
    except BaseException:  # SystemExit and KeyboardInterrupt of a block are failures too
        results[line] = {"status": "failed", "error": traceback.format_exc()}
        failed = line
    save()
    sys.stdout.flush()
    sys.stderr.flush()
save()
'''

PYTHON_FLAGS = ["-W", "error"]


def run_page(page: str, text: str, blocks: list[Block], tmp: Path) -> tuple[dict[str, dict[str, str]], str]:
    """Run the blocks of ``page`` (whose markdown is ``text``) in a fresh process in ``tmp``.

    Returns the results by opening-fence line (``status``: passed, failed or not run; ``error``) and the
    process's output.
    """
    work, home = tmp / "work", tmp / "home"
    work.mkdir()
    home.mkdir()
    plan = {
        "page": page,
        "text": text,
        "repo": str(ROOT),
        "python_flags": PYTHON_FLAGS,
        "blocks": [{"line": b.line, "code": b.code, "script": list(b.script), "file": b.file, "output": b.output,
                    "before": [list(c) for c in b.before]} for b in blocks if b.skip is None],
    }
    (tmp / "plan.json").write_text(json.dumps(plan), encoding="utf-8")
    (tmp / "driver.py").write_text(DRIVER, encoding="utf-8")
    results_file = tmp / "results.json"
    env = dict(os.environ, HOME=str(home), LUMO_HOME=str(tmp / "lumo-home"), LUMO_CACHE_DIR=str(tmp / "cache"),
               XDG_CACHE_HOME=str(tmp / "xdg-cache"), MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTHONPATH", None)
    try:
        proc = subprocess.run([sys.executable, *PYTHON_FLAGS, str(tmp / "driver.py"), str(tmp / "plan.json"),
                               str(results_file)], cwd=work, env=env, capture_output=True, text=True,
                              timeout=PAGE_TIMEOUT)
        output = proc.stdout + proc.stderr
        if proc.returncode != 0:
            output += f"\n(the page's process exited with {proc.returncode})"
    except subprocess.TimeoutExpired as e:
        output = f"{_text(e.stdout)}{_text(e.stderr)}\n(the page's process was stopped after {PAGE_TIMEOUT} s)"
    results = json.loads(results_file.read_text(encoding="utf-8")) if results_file.exists() else {}
    return results, output


def _text(out: str | bytes | None) -> str:
    return out.decode(errors="replace") if isinstance(out, bytes) else (out or "")


def _tail(text: str, n: int = 6000) -> str:
    return text if len(text) <= n else "...\n" + text[-n:]


BLOCKS = all_blocks()


@pytest.fixture(scope="module")
def page_results(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], tuple[dict[str, dict[str, str]], str]]:
    """Runs each page once, on first use, and keeps its results for the page's other blocks."""
    cache: dict[str, tuple[dict[str, dict[str, str]], str]] = {}

    def get(page: str) -> tuple[dict[str, dict[str, str]], str]:
        if page not in cache:
            tmp = tmp_path_factory.mktemp(re.sub(r"\W", "-", page))
            text = (ROOT / page).read_text(encoding="utf-8")
            cache[page] = run_page(page, text, [b for b in BLOCKS if b.page == page], tmp)
        return cache[page]

    return get


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_doc_block_runs(block: Block, page_results: Callable[[str], tuple[dict[str, dict[str, str]], str]]) -> None:
    if block.skip is not None:
        pytest.skip(f"{block.id}: no-test: {block.skip}")
    results, output = page_results(block.page)
    result = results.get(str(block.line))
    if result is None:
        pytest.fail(f"{block.id} did not run; the page's output:\n{_tail(output)}", pytrace=False)
    if result["status"] != "passed":
        pytest.fail(f"{block.id} {result['status']}:\n{result['error']}\nthe page's output:\n{_tail(output)}",
                    pytrace=False)


def test_doc_test_directives_are_well_formed() -> None:
    problems = [p for page in PAGES for p in parse_page(page.read_text(encoding="utf-8"),
                                                        page.relative_to(ROOT).as_posix())[1]]
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------- the machinery itself

SAMPLE = """\
# A page

```python
x = 1
```

<!-- no-test: needs a GPU -->
```python
import gpu
```

1. a list item:

   ```python
   x += 1
   print("x is", x)
   ```

<!-- test-file: conf/config.yaml -->
```yaml
name: from the file
```

<!-- test-before: python -c "print('before', open('conf/config.yaml').read().strip())" -->
<!-- test-as-script: app.py --name "a b" -->
```python
import sys
print(sys.argv[1:])
```

```bash
not run: not python
```

<!-- test-output -->
```text
$ python app.py --name "a b"
['--name', 'a b']
...
```

```python
assert x == 3, x
```
"""


def test_the_page_parser(tmp_path: Path) -> None:
    blocks, problems = parse_page(SAMPLE, "page.md")
    assert not problems
    assert [(b.line, b.skip, b.script, b.file) for b in blocks] == [
        (3, None, (), None), (8, "needs a GPU", (), None), (14, None, (), None),
        (20, None, (), "conf/config.yaml"), (26, None, ("app.py", "--name", "a b"), None), (36, None, (), None),
        (42, None, (), None)]
    assert blocks[5].output and not blocks[4].output
    assert blocks[2].code == 'x += 1\nprint("x is", x)\n' and blocks[3].code == "name: from the file\n"
    assert blocks[4].before == (("python", "-c", "print('before', open('conf/config.yaml').read().strip())"),)
    _, problems = parse_page("<!-- no-test: -->\n```python\n```\n<!-- test-skip: x -->\n```python\n```\n", "p.md")
    assert problems == ["p.md:1: no-test needs an argument: <!-- no-test: ... -->",
                        "p.md:4: unknown test directive '<!-- test-skip: x -->'"]
    _, problems = parse_page("```python\nprint(1)\n```\n<!-- test-output -->\n```\n2\n```\n", "p.md")
    assert problems == []
    blocks, _ = parse_page("```python\nprint(1)\n```\n<!-- test-output -->\n```\n2\n```\n", "p.md")
    results, _ = run_page("p.md", "", blocks, tmp_path)
    assert results["5"]["status"] == "failed" and "did not print these lines of the page:\n  2" in results["5"]["error"]


def test_a_failing_block_is_reported_with_its_page_and_line(tmp_path: Path) -> None:
    blocks, _ = parse_page(SAMPLE, "docs/sample.md")
    results, output = run_page("docs/sample.md", SAMPLE, blocks, tmp_path)
    assert [results[k]["status"] for k in ("3", "14", "20", "26", "36")] == ["passed"] * 5, output
    assert "8" not in results  # the opted-out block
    assert "x is 2" in output and "before name: from the file" in output and "['--name', 'a b']" in output
    error = results["42"]["error"]
    assert results["42"]["status"] == "failed"
    assert 'File "docs/sample.md", line 43' in error and "assert x == 3, x" in error and "AssertionError: 2" in error
