"""Secret values kept out of the store: passwords, tokens and keys in argv, Hydra overrides and params.

A leaf module (it imports only ``errors``). A *key* is secret when the last part of its dotted name
(``db.password`` -> ``password``), split into words at ``_``, ``-``, ``.`` and camelCase, **ends with**
the words of one of the secret names (case-insensitive): ``password``, ``db_password``, ``apiKey``,
``HF_TOKEN`` and ``AWS_SECRET_ACCESS_KEY`` are secret; ``max_tokens``, ``tokenizer``, ``token_dim`` and
``password_file`` are not. The names are :data:`DEFAULT_SECRET_KEYS` plus the comma-separated entries of
``LUMO_SECRET_KEYS``; an entry ``-name`` removes a default name and exempts a key spelled exactly so.

Where a key is secret its value is recorded as ``***`` (:data:`MASK`), and ``run.json['masked']`` lists
``where:key`` for each masked value. A secret value (4 characters or more) is also replaced where it
appears inside another recorded string (an interpolated URL, the command). ``lumo-hydra rerun`` puts
the value back from an override on its own command line, ``LUMO_SECRET_<KEY>`` or a prompt
(:func:`restore_argv`). See ``docs/security.md``.
"""
from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from lumo_hydra.errors import LumoValueError

__all__ = ["MASK", "DEFAULT_SECRET_KEYS", "ENV_SECRET_KEYS", "ENV_SECRET_PREFIX", "SecretPolicy",
           "SecretMissingError", "Masker", "policy", "is_secret", "mask_argv", "mask_record",
           "masked_slots", "restore_argv", "secret_env_name", "shell_quote"]

MASK = "***"
#: environment variable: more secret names (``a,b``), or ``-name`` to drop a default / exempt a key
ENV_SECRET_KEYS = "LUMO_SECRET_KEYS"
#: ``lumo-hydra rerun`` reads a masked value from ``LUMO_SECRET_<KEY>`` (``db.password`` -> ``..._DB_PASSWORD``)
ENV_SECRET_PREFIX = "LUMO_SECRET_"
DEFAULT_SECRET_KEYS: tuple[str, ...] = (
    "password", "passwd", "passphrase", "secret", "secret_key", "token", "api_key", "apikey",
    "access_key", "private_key", "credential", "credentials",
)
#: a secret value shorter than this is masked where its key is, but not searched for in other strings
MIN_SCRUB_LEN = 4

# Plain string steps instead of regular expressions here: every recorded job imports this module and
# masks its argv, overrides and params, and compiling the patterns cost ~0.5 ms per process (issue 18).
_UPPER = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_LOWER_DIGIT = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_ALNUM = _UPPER | _LOWER_DIGIT
_KEY_FIRST = _UPPER | frozenset("abcdefghijklmnopqrstuvwxyz_$")
_KEY_MORE = frozenset("_$.@/-[]")
# what shlex.quote leaves unquoted
_SHELL_SAFE = _ALNUM | frozenset("_@%+=:,./-")
_WORDS: dict[str, tuple[str, ...]] = {}


class SecretMissingError(LumoValueError):
    """``rerun`` of a run whose record masked a secret, with no value given for it."""


def _words(name: str) -> tuple[str, ...]:
    """The lower-case words of a key: runs of ASCII letters and digits, also split before an upper-case
    letter that follows a lower-case letter or a digit (``dbPassword`` -> ``("db", "password")``)."""
    hit = _WORDS.get(name)
    if hit is not None:
        return hit
    words = []
    start = -1
    prev = ""
    for i, c in enumerate(name):
        if c in _ALNUM:
            if start < 0:
                start = i
            elif c in _UPPER and prev in _LOWER_DIGIT:
                words.append(name[start:i].lower())
                start = i
        elif start >= 0:
            words.append(name[start:i].lower())
            start = -1
        prev = c
    if start >= 0:
        words.append(name[start:].lower())
    out = tuple(words)
    if len(_WORDS) < 4096:
        _WORDS[name] = out
    return out


def _override(arg: str) -> tuple[str, str, str] | None:
    """``(prefix, key, value)`` of a Hydra override: optional ``+``, ``++`` or ``~``, then the key (letters,
    digits, ``_$.@/-[]``, not starting with a digit, ``.``, ``@``, ``/``, ``-`` or a bracket), ``=``, the value."""
    i = 0
    while i < len(arg) and arg[i] in "+~":
        i += 1
    key, eq, value = arg[i:].partition("=")
    if not eq or not key or key[0] not in _KEY_FIRST:
        return None
    for c in key:
        if c not in _KEY_MORE and not c.isalnum():
            return None
    return arg[:i], key, value


def shell_quote(s: str) -> str:
    """``shlex.quote(s)`` (without importing shlex): ``s`` as one shell word."""
    if not s:
        return "''"
    if _SHELL_SAFE.issuperset(s):
        return s
    return "'" + s.replace("'", "'\"'\"'") + "'"


class SecretPolicy:
    """Which keys are secret: ``names`` (each matched as the trailing words of a key) minus ``exempt``."""

    def __init__(self, names: Iterable[str], exempt: Iterable[str] = ()) -> None:
        self.names = tuple(dict.fromkeys(n for n in names if _words(n)))
        self._patterns = [_words(n) for n in self.names]
        self.exempt = frozenset("_".join(_words(e)) for e in exempt)
        self._any: re.Pattern[str] | None = None

    @classmethod
    def from_spec(cls, spec: str | None) -> SecretPolicy:
        """The defaults changed by a ``LUMO_SECRET_KEYS`` value (``"session_id,-token"``)."""
        names = list(DEFAULT_SECRET_KEYS)
        exempt: list[str] = []
        for entry in (spec or "").replace(",", " ").split():
            if entry.startswith("-") and entry[1:]:
                drop = _words(entry[1:])
                names = [n for n in names if _words(n) != drop]
                exempt.append(entry[1:])
            elif entry:
                names.append(entry)
        return cls(names, exempt)

    def may_name_a_secret(self, text: str) -> bool:
        """Whether ``text`` contains something that could be a secret key's name (a cheap test, never a
        false "no": each name's words in order, with anything but letters and digits between them)."""
        if text.isascii():  # ASCII: re.I is plain ASCII case, so a match needs a name's first word as is
            low = text.lower()
            if not any(w[0] in low for w in self._patterns):
                return False
        if self._any is None:
            self._any = re.compile("|".join("[^A-Za-z0-9]*".join(map(re.escape, w)) for w in self._patterns) or "(?!)",
                                   re.I)
        return self._any.search(text) is not None

    def is_secret(self, key: str) -> bool:
        """Whether ``key`` (a key, a dotted key or an option name such as ``--db-password``) is secret."""
        key = key.strip().lstrip("-+~")
        last = key[max(key.rfind("."), key.rfind("/")) + 1:]
        words = _words(last)
        if not words or "_".join(words) in self.exempt:
            return False
        return any(len(p) <= len(words) and words[-len(p):] == p for p in self._patterns)


_POLICY: list[tuple[str | None, SecretPolicy]] = []


def policy() -> SecretPolicy:
    """The policy of ``LUMO_SECRET_KEYS`` as the environment says now (cached per value)."""
    spec = os.environ.get(ENV_SECRET_KEYS)
    if not _POLICY or _POLICY[0][0] != spec:
        _POLICY[:] = [(spec, SecretPolicy.from_spec(spec))]
    return _POLICY[0][1]


def is_secret(key: str) -> bool:
    """Whether ``key`` is secret under the current :func:`policy`."""
    return policy().is_secret(key)


def _is_option(arg: str) -> bool:
    return arg.startswith("-") and len(arg) > 1 and not arg[1:2].isdigit()


class Masker:
    """Masks secret values in argv, overrides and mappings; remembers what it masked (``names``, for
    ``run.json['masked']``) and the values (``values``, to :meth:`scrub` them from other strings)."""

    def __init__(self, pol: SecretPolicy | None = None) -> None:
        self.policy = pol or policy()
        self.names: list[str] = []
        self.values: set[str] = set()

    def _hide(self, where: str, key: str, value: Any) -> str:
        if f"{where}:{key}" not in self.names:
            self.names.append(f"{where}:{key}")
        if isinstance(value, str) and value != MASK:
            self.values.add(value)
        elif value is not None and not isinstance(value, (dict, list)):
            self.values.add(str(value))
        return MASK

    def argv(self, argv: Sequence[str], where: str = "argv") -> list[str]:
        """``--password=x``, ``--password x``, ``+db.password=x`` and ``password=x`` with ``x`` masked."""
        out: list[str] = []
        pending: str | None = None  # the option whose value is the next argument
        for arg in argv:
            arg = str(arg)
            if pending is not None:
                if arg.startswith("--"):  # no value after all (a flag): the next option
                    pending = None
                else:
                    out.append(self._hide(where, pending, arg))
                    pending = None
                    continue
            if _is_option(arg):
                name, eq, value = arg.partition("=")
                if self.policy.is_secret(name):
                    if eq:
                        arg = f"{name}={self._hide(where, name, value)}"
                    else:
                        pending = name
            else:
                ov = _override(arg)
                if ov and self.policy.is_secret(ov[1].split("@")[0]):
                    arg = f"{ov[0]}{ov[1]}={self._hide(where, ov[1], ov[2])}"
            out.append(arg)
        return out

    def overrides(self, overrides: Iterable[str], where: str = "override") -> list[str]:
        """Hydra override strings (``+db.password=x``) with secret values masked."""
        return self.argv([str(o) for o in overrides], where)

    def mapping(self, obj: Any, where: str = "params", prefix: str = "") -> Any:
        """A copy of nested dicts/lists with the values of secret keys masked (``None`` stays ``None``)."""
        if isinstance(obj, Mapping):
            out = {}
            for k, v in obj.items():
                key = f"{prefix}.{k}" if prefix else str(k)
                if v is not None and not (isinstance(v, str) and not v) and isinstance(k, str) \
                        and self.policy.is_secret(k):
                    out[k] = self._hide(where, key, v) if not isinstance(v, (dict, list)) else \
                        self._hide_all(where, key, v)
                else:
                    out[k] = self.mapping(v, where, key)
            return out
        if isinstance(obj, list):
            return [self.mapping(v, where, f"{prefix}[{i}]") for i, v in enumerate(obj)]
        return obj

    def _hide_all(self, where: str, key: str, value: Any) -> str:
        """A secret key holding a container: every leaf value is a secret."""
        stack = [value]
        while stack:
            v = stack.pop()
            if isinstance(v, Mapping):
                stack.extend(v.values())
            elif isinstance(v, list):
                stack.extend(v)
            elif v is not None:
                self._hide(where, key, v)
        return self._hide(where, key, None)

    def command(self, cmd: str) -> str:
        """A recorded shell command (``cd <cwd> && <python> <args>``) with secret arguments masked."""
        head, sep, rest = cmd.rpartition(" && ")
        # Only an argument whose key names a secret is masked, and each argument of the split is the
        # text with quotes and backslashes taken out: without a secret's name there, nothing to mask.
        if not self.policy.may_name_a_secret(rest.replace("'", "").replace('"', "").replace("\\", "")):
            return cmd
        import shlex  # lazy: most commands name no secret (issue 18)

        try:
            parts = shlex.split(rest)
        except ValueError:
            return cmd
        masked = self.argv(parts, "command")
        if masked == parts:
            return cmd
        return f"{head}{sep}" + " ".join(shell_quote(a) for a in masked)

    def scrub(self, obj: Any) -> Any:
        """``obj`` with every remembered secret value (4+ characters) replaced inside strings."""
        values = sorted((v for v in self.values if len(v) >= MIN_SCRUB_LEN), key=len, reverse=True)
        if not values:
            return obj
        pattern = re.compile("|".join(re.escape(v) for v in values))

        def walk(x: Any) -> Any:
            if isinstance(x, str):
                return pattern.sub(MASK, x)
            if isinstance(x, dict):
                return {k: walk(v) for k, v in x.items()}
            if isinstance(x, list):
                return [walk(v) for v in x]
            return x

        return walk(obj)


def mask_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` with secret values masked (the current policy)."""
    return Masker().argv(argv)


def mask_record(rec: dict[str, Any], masker: Masker | None = None) -> list[str]:
    """Mask, in place, every place a run record holds argv, overrides or params: ``execute.exec_argv``,
    ``execute.command``, ``pinfo.argv``, ``hydra.overrides``, ``hydra.hydra_overrides``, ``params``;
    add what was masked to ``rec['masked']`` and return it (idempotent)."""
    m = masker or Masker()
    ex, pinfo, hydra = rec.get("execute"), rec.get("pinfo"), rec.get("hydra")
    if isinstance(ex, dict) and isinstance(ex.get("exec_argv"), list):
        ex["exec_argv"] = m.argv(ex["exec_argv"])
    if isinstance(pinfo, dict) and isinstance(pinfo.get("argv"), list):
        pinfo["argv"] = m.argv(pinfo["argv"])
    if isinstance(hydra, dict):
        for key in ("overrides", "hydra_overrides"):
            if isinstance(hydra.get(key), list):
                hydra[key] = m.overrides(hydra[key])
    if isinstance(rec.get("params"), (dict, list)):
        rec["params"] = m.mapping(rec["params"])
    if isinstance(ex, dict) and isinstance(ex.get("command"), str):
        ex["command"] = m.command(ex["command"])
    for key in ("execute", "pinfo", "hydra", "params"):
        if rec.get(key) is not None:
            rec[key] = m.scrub(rec[key])
    old = rec.get("masked")
    names = list(dict.fromkeys([*(old if isinstance(old, list) else []), *m.names]))
    if names:
        rec["masked"] = names
    return names


# -- rerun: putting the values back ----------------------------------------------------------------
def secret_env_name(key: str) -> str:
    """``LUMO_SECRET_<KEY>`` for a masked key: ``--db-password`` and ``+db.password`` -> ``LUMO_SECRET_DB_PASSWORD``."""
    return ENV_SECRET_PREFIX + re.sub(r"[^A-Za-z0-9]+", "_", key.lstrip("-+~")).strip("_").upper()


def _key(arg: str) -> tuple[str, str | None] | None:
    """``(normalized key, value or None)`` of an option or override argument, else None."""
    if _is_option(arg):
        name, eq, value = arg.partition("=")
        return name.lstrip("-").replace("-", "_"), (value if eq else None)
    ov = _override(arg)
    return (ov[1].replace("-", "_"), ov[2]) if ov else None


def masked_slots(argv: Sequence[str]) -> list[tuple[int, str]]:
    """``(index, key)`` of each masked value in ``argv`` (``--password=***``, ``--password ***``, ``k=***``)."""
    slots = []
    for i, arg in enumerate(argv):
        if arg == MASK and i > 0 and _is_option(argv[i - 1]) and "=" not in argv[i - 1]:
            slots.append((i, argv[i - 1]))
        elif arg.endswith("=" + MASK) and _key(arg) is not None:
            slots.append((i, arg[: -len(MASK) - 1]))
    return slots


def _take_override(argv: list[str], start: int, key: str) -> str | None:
    """The value a later argument gives ``key`` (removed from ``argv``), else None."""
    want = _key(key + "=")
    for j in range(start, len(argv)):
        k = _key(argv[j])
        if k is None or want is None or k[0] != want[0]:
            continue
        if k[1] is not None and k[1] != MASK:
            del argv[j]
            return k[1]
        if k[1] is None and j + 1 < len(argv) and argv[j + 1] != MASK:
            value = argv[j + 1]
            del argv[j:j + 2]
            return value
    return None


def _ask_tty(prompt: str) -> str | None:
    if not sys.stdin.isatty():
        return None
    import getpass

    return getpass.getpass(prompt)


def restore_argv(argv: Sequence[str], *, run: str = "?", environ: Mapping[str, str] | None = None,
                 ask: Callable[[str], str | None] | None = _ask_tty) -> list[str]:
    """The argv of a run's recorded command with each masked value (``***``) put back: from a later
    argument setting the same key (an override given to ``rerun``, which is then dropped), else from
    ``LUMO_SECRET_<KEY>``, else from ``ask(prompt)`` (a prompt on a terminal). Raises
    :class:`SecretMissingError` naming the key and the ways to give it when none has a value."""
    out = [str(a) for a in argv]
    env = os.environ if environ is None else environ
    while True:
        slots = masked_slots(out)
        if not slots:
            return out
        i, key = slots[0]
        value = _take_override(out, i + 1, key)
        if value is None:
            value = env.get(secret_env_name(key))
        if value is None and ask is not None:
            value = ask(f"value of {key} for the rerun of {run} (masked as {MASK} in its record): ")
        if value is None or value == MASK:
            raise SecretMissingError(
                f"run {run!r} recorded {key!r} masked as {MASK!r}; give its value as an override "
                f"(lumo-hydra rerun {run} {key}=<value>), in the environment variable "
                f"{secret_env_name(key)}, or run rerun on a terminal to be asked for it")
        out[i] = value if out[i] == MASK else f"{key}={value}"
