"""lumo's ``exp.backup(...)`` on :class:`~lumo_hydra.record.experiment.Experiment`, as a mixin: the work
is in :mod:`lumo_hydra.share.backup`, imported only when a backup is asked for (docs/share.md)."""
from __future__ import annotations

from typing import Any

__all__ = ["BackupMixin"]


class BackupMixin:
    """``backup('local', target_dir, ...)`` and ``backup('github', repo=..., ...)`` of an ended run."""

    def backup(self, backend: str = "local", target_dir: str | None = None, *, with_code: bool = False,
               with_blob: bool = False, with_cache: bool = False, repo: str | None = None,
               access_token: str | None = None, labels: list[str] | None = None, update: bool = True,
               api_url: str | None = None) -> Any:
        """``'local'``: one ``.tar.gz`` of the run in ``target_dir``, returns its path; ``'github'``: the run
        as a closed issue of ``repo`` (``owner/name``), returns the issue number. Recorded in the run as
        ``backup[<time>]``."""
        from lumo_hydra.share.backup import backup_run

        info_dir: str = getattr(self, "info_dir")  # noqa: B009 (the property raises for a run not started)
        return backup_run(info_dir, backend, target_dir, with_code=with_code, with_blob=with_blob,
                          with_cache=with_cache, repo=repo, access_token=access_token, labels=labels,
                          update=update, api_url=api_url)
