"""Backups of one run (lumo's ``exp.backup(...)``; docs/share.md, "Backups").

- ``local``: one ``.tar.gz`` of the run (a pack: ``lumo-hydra unpack`` reads it, and ``tar xzf`` gives
  ``experiments/<exp>/<test>/``, ``blob/...``, ``cache/...`` for ``Experiment.from_disk``).
- ``github``: a readable summary posted as an issue of a repository (closed, with labels), through
  GitHub's REST API with plain HTTPS calls (``httpx``: a small, well-kept client with timeouts by
  default; no SDK). ``update=True`` edits the issue of the run's last GitHub backup to that repository.
  The token (argument, else ``$GH_TOKEN``, else ``$GITHUB_TOKEN``) is sent in the ``Authorization``
  header only: never recorded, never printed. ``$LUMO_GITHUB_API`` (or ``api_url``) points at a GitHub
  Enterprise server (``https://HOST/api/v3``).

Each backup is recorded in the run as ``backup[<time>] = {backend, ...}`` through the reader's
``edit_record`` (the run must have ended: one writer per run folder). This module imports neither the
Watcher nor ``record.experiment``: callers pass the run's info folder.
"""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

from lumo_hydra.errors import LumoValueError, StoreError
from lumo_hydra.store.layout import ENV_HOME, StoreLayout
from lumo_hydra.store.reader import edit_record, read_metrics, read_record

__all__ = ["backup_run", "backup_local", "backup_github", "github_body", "BODY_LIMIT", "ENV_GITHUB_API", "GitHubError"]

#: GitHub refuses issue bodies over 65,536 characters; ours stay under this
BODY_LIMIT = 65_000
#: environment variable with the API base URL (GitHub Enterprise: ``https://HOST/api/v3``)
ENV_GITHUB_API = "LUMO_GITHUB_API"
DEFAULT_API = "https://api.github.com"
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_CUT = "\n\n… (cut here: {n} characters left out to stay under GitHub's limit; the full record is the run's run.json)\n"


class GitHubError(LumoValueError):
    """A GitHub API call failed (the message names the call and GitHub's answer, never the token)."""


def _stamp() -> str:
    return time.strftime("%Y-%m-%dT%H-%M-%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}"


def _record_backup(info_dir: Path, entry: dict[str, Any]) -> str:
    """Add ``backup[<time>] = entry`` to the run's record (``edit_record``); returns the time key."""
    key = _stamp()
    rec = read_record(info_dir)
    if rec.get("status") == "running":
        raise StoreError(f"run {rec.get('test_name')!r} is still running; back it up after it ends "
                         "(its process rewrites run.json)")

    def edit(r: dict[str, Any]) -> None:
        b = r.get("backup")
        r["backup"] = {**(b if isinstance(b, dict) else {}), key: entry}

    edit_record(info_dir, edit)
    return key


def backup_local(info_dir: str | os.PathLike[str], target_dir: str | os.PathLike[str], *, with_code: bool = False,
                 with_blob: bool = False, with_cache: bool = False) -> str:
    """One ``.tar.gz`` of the run in ``target_dir`` (``<exp>-<test>.tar.gz``); returns its path."""
    from lumo_hydra.share.pack import pack_runs

    info = Path(info_dir).absolute()
    layout, exp, test = StoreLayout.of_info_dir(info)
    out = Path(target_dir).absolute() / f"{exp}-{test}.tar.gz"
    pack_runs(layout.root, [f"{exp}/{test}"], out, with_blob, code=with_code, cache=with_cache)
    _record_backup(info, {"backend": "local", "path": str(out), "with_code": with_code, "with_blob": with_blob,
                          "with_cache": with_cache})
    return str(out)


# -- the GitHub summary ----------------------------------------------------------------------------
def _homeless(text: str, root: str) -> str:
    """``text`` with the store root written ``$LUMO_HOME`` and the home folder ``~``."""
    home = os.path.expanduser("~").rstrip("/")
    if root and root != "/":
        text = text.replace(root, f"${ENV_HOME}")
    if home and home != "/":
        text = re.sub(re.escape(home) + r"(?=/|\b|$)", "~", text)
    return text


def _cut(s: str, room: int) -> str:
    """``s`` cut to ``room`` characters with the marker saying how much was left out."""
    if len(s) <= room:
        return s
    keep = max(0, room - len(_CUT.format(n=len(s))))
    return s[:keep] + _CUT.format(n=len(s) - keep)


def _code(s: str, lang: str = "", room: int = BODY_LIMIT) -> str:
    s = _cut(s, room)
    fence = "````" if "```" in s else "```"
    return f"{fence}{lang}\n{s}\n{fence}"


def github_body(rec: dict[str, Any], metrics: dict[str, Any], root: str, limit: int = BODY_LIMIT) -> str:
    """The issue body of run ``rec``: a summary, then the full record folded in ``<details>``, cut to
    ``limit`` characters with a marker; the store root as ``$LUMO_HOME``, the home folder as ``~``."""
    prog: dict[str, Any] = rec["progress"] if isinstance(rec.get("progress"), dict) else {}
    ex: dict[str, Any] = rec["execute"] if isinstance(rec.get("execute"), dict) else {}
    lines = [f"**experiment** `{rec.get('exp_name')}` · **run** `{rec.get('test_name')}` · **status** `{rec.get('status')}`",
             "", f"- start: {prog.get('start')}", f"- end: {prog.get('end')}",
             f"- command: `{ex.get('command') or ' '.join(map(str, ex.get('exec_argv') or []))}`"]
    best = {k: (v.get("best") if isinstance(v, dict) else v) for k, v in (metrics or {}).items()}
    if best:
        lines += ["", "**best metrics**", "", "| metric | best |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in sorted(best.items())]
    params = json.dumps(rec.get("params") or {}, indent=1, sort_keys=True, default=str)
    lines += ["", "**params**", "", _code(params, "json", limit // 4)]
    exc = rec.get("exception")
    if exc:
        lines += ["", "**exception**", "", _code(json.dumps(exc, indent=1, default=str) if not isinstance(exc, str) else exc,
                                                  "", limit // 8)]
    head = _homeless("\n".join(lines), root)
    full = _homeless(json.dumps({**rec, "metrics": metrics}, indent=1, sort_keys=True, default=str), root)
    opening, closing = "\n\n<details><summary>full record</summary>\n\n```json\n", "\n```\n</details>\n"
    full = _cut(full, limit - len(head) - len(opening) - len(closing))
    body = head + opening + full.replace("```", "'''") + closing
    return body[:limit]


# -- the GitHub API --------------------------------------------------------------------------------
def _token(access_token: str | None) -> str:
    tok = access_token or os.environ.get("GH_TOKEN") or os.environ.get("GITHUB_TOKEN")
    if not tok:
        raise LumoValueError("backup to GitHub needs a token: access_token=..., or $GH_TOKEN / $GITHUB_TOKEN")
    return tok


class _GitHub:
    def __init__(self, repo: str, token: str, api_url: str | None) -> None:
        try:
            import httpx
        except ImportError:
            raise LumoValueError("backup to GitHub needs httpx: pip install 'lumo-hydra[github]'") from None
        base = (api_url or os.environ.get(ENV_GITHUB_API) or DEFAULT_API).rstrip("/")
        self.repo, self._token = repo, token
        self._c = httpx.Client(base_url=f"{base}/repos/{repo}", timeout=30.0, headers={
            "Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28", "User-Agent": "lumo-hydra"})

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        import httpx

        try:
            r = self._c.request(method, path, json=body)
        except httpx.HTTPError as e:
            raise GitHubError(f"{method} {self.repo} issues{path}: {type(e).__name__}: "
                              f"{str(e).replace(self._token, '***')}") from None
        try:
            doc = r.json()
        except ValueError:
            doc = {}
        if r.status_code >= 400 and r.status_code != 404:
            msg = str(doc.get("message") if isinstance(doc, dict) else "")[:300].replace(self._token, "***")
            raise GitHubError(f"{method} {self.repo} issues{path}: HTTP {r.status_code}: {msg}")
        return r.status_code, doc if isinstance(doc, dict) else {}

    def close(self) -> None:
        self._c.close()


def _last_issue(rec: dict[str, Any], repo: str) -> int | None:
    b = rec.get("backup")
    for _, e in sorted((b if isinstance(b, dict) else {}).items(), reverse=True):
        if isinstance(e, dict) and e.get("backend") == "github" and e.get("repo") == repo and isinstance(e.get("number"), int):
            return int(e["number"])
    return None


def backup_github(info_dir: str | os.PathLike[str], repo: str, access_token: str | None = None,
                  labels: list[str] | None = None, update: bool = True, api_url: str | None = None) -> int:
    """Post run ``info_dir`` as a closed issue of ``repo`` (``owner/name``); returns the issue number."""
    if not isinstance(repo, str) or not _REPO.match(repo):
        raise LumoValueError(f"repo={repo!r} is not a GitHub repository; allowed: 'owner/name'")
    token = _token(access_token)
    info = Path(info_dir).absolute()
    layout, _, _ = StoreLayout.of_info_dir(info)
    rec = read_record(info)
    body = github_body(rec, read_metrics(info), str(layout.root)).replace(token, "***")
    payload: dict[str, Any] = {"title": f"[lumo-hydra] {rec.get('exp_name')}/{rec.get('test_name')} ({rec.get('status')})",
                               "body": body, "labels": list(labels or [])}
    gh = _GitHub(repo, token, api_url)
    try:
        number = _last_issue(rec, repo) if update else None
        if number is not None and gh.call("GET", f"/issues/{number}")[0] == 404:
            number = None
        if number is None:
            status, doc = gh.call("POST", "/issues", payload)
            if status == 404 or not isinstance(doc.get("number"), int):
                raise GitHubError(f"POST {repo} issues: HTTP {status}: the repository was not found or the token "
                                  "cannot write its issues")
            number = int(doc["number"])
        status, _ = gh.call("PATCH", f"/issues/{number}", {**payload, "state": "closed"})
        if status == 404:
            raise GitHubError(f"PATCH {repo} issues/{number}: HTTP 404")
    finally:
        gh.close()
    _record_backup(info, {"backend": "github", "number": number, "repo": repo})
    return number


def backup_run(info_dir: str | os.PathLike[str], backend: str, target_dir: str | os.PathLike[str] | None = None, *,
               with_code: bool = False, with_blob: bool = False, with_cache: bool = False, repo: str | None = None,
               access_token: str | None = None, labels: list[str] | None = None, update: bool = True,
               api_url: str | None = None) -> str | int:
    """``Experiment.backup``: ``backend`` ``'local'`` (``target_dir``) or ``'github'`` (``repo``)."""
    if backend == "local":
        if target_dir is None:
            raise LumoValueError("backup('local', target_dir): target_dir is required (the folder of the archive)")
        return backup_local(info_dir, target_dir, with_code=with_code, with_blob=with_blob, with_cache=with_cache)
    if backend == "github":
        if repo is None:
            raise LumoValueError("backup('github', repo='owner/name'): repo is required")
        return backup_github(info_dir, repo, access_token, labels, update, api_url)
    raise LumoValueError(f"backend={backend!r} is not a backup backend; allowed: 'local', 'github'")
