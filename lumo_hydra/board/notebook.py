"""``Watcher.panel()``: the board in a notebook cell (JupyterLab, Notebook, VS Code), offline.

:func:`panel_of` is what ``Watcher.panel(df=None, **filters)`` returns: the board page with every asset
inline (no CDN). Without ``df`` and filters the table is live (the store's runs, checked every 3 s); with
them it shows that frame (``df`` as given, nested or flat, or ``load(**filters)``).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["panel_of"]


def panel_of(watcher: Any, df: Any = None, filters: Mapping[str, Any] | None = None, *,
             read_only: bool = False) -> Any:
    """The board page over ``watcher`` showing ``df`` (or ``watcher.load(**filters)``; all runs, live, when
    neither is given). Raises ``ImportError`` naming the extra when Panel is missing."""
    try:
        import panel  # noqa: F401
    except ImportError as e:
        raise ImportError("Watcher.panel() needs HoloViz Panel: pip install 'lumo-hydra[board]'") from e
    from lumo_hydra.board.app import board_app
    from lumo_hydra.board.context import BoardContext

    if df is None and filters:
        df = watcher.load(flatten=True, **dict(filters))
    ctx = BoardContext(watcher, read_only=read_only, df=df)
    return board_app(ctx, url=False, inline=True, refresh_ms=None if df is not None else 3000)
