"""``pack --redact``: ``$HOME``, host names and user names masked in the text records of a pack.

``$HOME`` becomes ``~``, the host name (and its short form) ``<host>``, the user name ``<user>``.
Only whole words are replaced (a user ``ann`` does not turn ``planning`` into ``pl<user>ing``). Blobs
and code bundles are not rewritten (docs/share.md).
"""
from __future__ import annotations

import os
import re

__all__ = ["Redactor", "hostname"]


def hostname() -> str:
    """This machine's name, as ``socket.gethostname()`` gives it (from ``os.uname()`` where there is one:
    ``pack``/``unpack`` need no ``socket`` import for it)."""
    uname = getattr(os, "uname", None)
    if uname is not None:
        return str(uname().nodename)
    import socket

    return socket.gethostname()


class Redactor:
    """Replaces ``home``, ``hosts`` and ``users`` in text."""

    __slots__ = ("home", "hosts", "users")

    def __init__(self, home: str, hosts: tuple[str, ...], users: tuple[str, ...]) -> None:
        self.home, self.hosts, self.users = home, tuple(hosts), tuple(users)

    def __repr__(self) -> str:
        return f"Redactor(home={self.home!r}, hosts={self.hosts!r}, users={self.users!r})"

    @classmethod
    def here(cls) -> Redactor:
        """The home folder, host names and user name of this machine and process."""
        import socket  # here: only --redact needs the fully qualified name

        host = hostname()
        hosts = tuple(dict.fromkeys(h for h in (host, host.split(".")[0], socket.getfqdn()) if len(h) >= 2))
        import getpass  # here: only --redact needs it

        try:
            user = getpass.getuser()
        except (OSError, KeyError):
            user = os.environ.get("USER", "")
        return cls(os.path.expanduser("~").rstrip("/"), hosts, (user,) if len(user) >= 2 else ())

    def text(self, s: str) -> str:
        """``s`` with the home folder, host names and user names masked."""
        if self.home and self.home != "/":
            s = re.sub(re.escape(self.home) + r"(?=/|\b|$)", "~", s)
        for h in sorted(self.hosts, key=len, reverse=True):
            s = re.sub(r"(?<![\w.-])" + re.escape(h) + r"(?![\w-])", "<host>", s)
        for u in self.users:
            s = re.sub(r"(?<![\w.-])" + re.escape(u) + r"(?![\w-])", "<user>", s)
        return s

    def bytes(self, data: bytes) -> bytes:
        """``data`` masked when it is UTF-8 text; binary data is returned unchanged."""
        try:
            s = data.decode("utf-8")
        except UnicodeDecodeError:
            return data
        return self.text(s).encode("utf-8")
