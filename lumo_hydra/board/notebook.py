"""``Watcher.panel()``: the board in a notebook cell (JupyterLab, Notebook, VS Code), offline.

:func:`panel_of` is what ``Watcher.panel(df=None, **filters)`` returns: the board page with every asset
inline (no CDN). Without ``df`` and filters the table is live (the store's runs, checked every 3 s); with
them it shows that frame (``df`` as given, nested or flat, or ``load(**filters)``).

Every display of the returned object carries BokehJS, Panel's and Tabulator's JavaScript in the same
cell output, just before the board (``pn.extension(inline=True)`` at display time, not once per
kernel): a page that never ran an earlier output's scripts (the cell run again after a page reload,
a second browser tab, an output cleared before the browser rendered it) would otherwise get a board
without its libraries ("Unable to run Panel code because Bokeh or Panel library is missing": an empty
output, no rows). The live check stops once every view of the board has been removed from the page.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

__all__ = ["panel_of", "load_js"]


def load_js() -> None:
    """Put Panel's JavaScript (BokehJS, Panel, Tabulator; inline, no CDN) into the current cell's output:
    what a board displayed after it needs in a page that has not loaded them yet."""
    import panel as pn

    warnings.filterwarnings("ignore", message="The inplace keyword", module=r"(panel|bokeh)(\.|$)")
    pn.extension("tabulator", inline=True)


def panel_of(watcher: Any, df: Any = None, filters: Mapping[str, Any] | None = None, *,
             read_only: bool = False, refresh_ms: int | None = 3000) -> Any:
    """The board page over ``watcher`` showing ``df`` (or ``watcher.load(**filters)``; all runs, live
    every ``refresh_ms``, when neither is given). Raises ``ImportError`` naming the extra when Panel is
    missing."""
    try:
        import panel  # noqa: F401
    except ImportError as e:
        raise ImportError("Watcher.panel() needs HoloViz Panel: pip install 'lumo-hydra[board]'") from e
    from lumo_hydra.board.app import BoardPage
    from lumo_hydra.board.context import BoardContext

    if df is None and filters:
        df = watcher.load(flatten=True, **dict(filters))
    ctx = BoardContext(watcher, read_only=read_only, df=df)
    # the libraries are sent at display time (load_js), not here: building the page sends nothing
    warnings.filterwarnings("ignore", message="The inplace keyword", module=r"(panel|bokeh)(\.|$)")
    page = BoardPage(ctx, url=False, refresh_ms=None if df is not None else refresh_ms)
    root = page.view()
    root._lumo_page = page  # type: ignore[attr-defined]  # as board_app() does: for tests and users
    cls_repr = type(root)._repr_mimebundle_
    shown = [False]

    def _repr_mimebundle_(include: Any = None, exclude: Any = None) -> Any:
        load_js()
        shown[0] = True
        return cls_repr(root, include, exclude)

    # IPython asks the object itself for _repr_mimebundle_, so an attribute of this one object is enough
    root._repr_mimebundle_ = _repr_mimebundle_  # type: ignore[method-assign]
    periodic = getattr(page, "_periodic", None)
    if periodic is not None:
        tick = page.tick

        def live_tick() -> None:
            # a notebook never ends a session: once shown and every view of it gone (cell re-run or
            # cleared, notebook closed), the check stops instead of running for the kernel's lifetime
            if shown[0] and not root._models:
                periodic.stop()
                return
            tick()

        periodic.callback = live_tick
    return root
