"""The board: the runs of a store in a web page (``lumo-hydra board``) and in a notebook (``Watcher().panel()``).

Built on HoloViz Panel (Tabulator, Bokeh server), an optional dependency (``pip install lumo-hydra[board]``):
nothing here is imported by ``import lumo_hydra`` or by a recorded job. Its modules receive the
``Watcher`` inside a :class:`~lumo_hydra.board.context.BoardContext` and never import
``lumo_hydra.watcher.watcher`` (``Watcher.panel()`` imports the board lazily). See ``docs/board.md``.
"""
from __future__ import annotations
