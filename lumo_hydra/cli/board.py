"""``lumo-hydra board``: the runs of the store in a web page (docs/board.md), or a static HTML export.

Panel is imported only here, inside :func:`cmd_board` (the ``board`` extra): every other command and
``import lumo_hydra`` stay free of it.
"""
from __future__ import annotations

import argparse
import importlib.util
import signal
import sys
from typing import Any

from lumo_hydra.cli.common import watcher
from lumo_hydra.errors import CLIError

__all__ = ["cmd_board", "LOOPBACK", "SERVING"]

LOOPBACK = ("127.0.0.1", "localhost", "::1")
#: the line printed (and flushed) on stdout once the server listens
SERVING = "lumo-hydra board: serving {url}"


def _need_panel() -> None:
    if importlib.util.find_spec("panel") is None:
        raise CLIError("the board needs HoloViz Panel, which is not installed; install it with: "
                       "pip install 'lumo-hydra[board]'")


def url_of(host: str, port: int) -> str:
    """``http://HOST:PORT/`` (an IPv6 address in brackets)."""
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def cmd_board(args: argparse.Namespace) -> int:
    """Serve the board on ``--host``/``--port`` until Ctrl-C or SIGTERM (exit 0), or ``--export`` it."""
    _need_panel()
    from lumo_hydra.board.context import BoardContext

    host = args.host
    if host not in LOOPBACK and not args.export:
        print(f"lumo-hydra board: warning: listening on {host}: anyone who can reach port {args.port or 'chosen'} "
              "can read the whole store and edit notes and tags; add --read-only to turn editing off, or keep "
              "the default --host 127.0.0.1 (and use an SSH tunnel)", file=sys.stderr, flush=True)
    ctx = BoardContext(watcher(args), read_only=args.read_only)
    if args.export:
        return _export(ctx, args)
    return _serve(ctx, host, args.port, where=args.where, open_browser=args.open)


def _export(ctx: Any, args: argparse.Namespace) -> int:
    from lumo_hydra.board.table import optional_view

    export_html = optional_view("export", "export_html")
    if export_html is None:
        raise CLIError("--export is not available in this version (lumo_hydra.board.export is missing)")
    path = export_html(ctx, args.where, args.export)
    print(f"lumo-hydra board: wrote {path}")
    return 0


def _serve(ctx: Any, host: str, port: int, *, where: str | None, open_browser: bool) -> int:
    from lumo_hydra.board.app import free_port, make_server

    try:
        if not port:
            port = free_port(host)
        server = make_server(ctx, host, port, where=where)
    except OSError as e:  # the port is taken, the host is not an address of this machine...
        raise CLIError(f"cannot listen on {host}:{port}: {e.strerror or e}; allowed: a free --port (0: any "
                       "free port) and a --host of this machine (default 127.0.0.1)") from None
    loop = server.io_loop

    def stop(signum: int, frame: Any) -> None:
        loop.asyncio_loop.call_soon_threadsafe(loop.stop)

    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.start()
        url = url_of(host, int(server.port or port))
        print(SERVING.format(url=url), flush=True)
        if open_browser:
            import webbrowser

            loop.add_callback(webbrowser.open, url)
        loop.start()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        try:
            server.stop()
        except Exception:  # noqa: BLE001, S110 - stopping a half-started server: nothing left to do
            pass
    print("lumo-hydra board: stopped", file=sys.stderr, flush=True)
    return 0
