"""Build a ``DatasetBuilder`` from a YAML DAG spec (through Hydra's ``instantiate`` or directly).

A spec (see ``docs/dataset.md`` and ``conf/lumo/dataset/*.yaml``)::

    _target_: lumo_hydra.data_spec.build
    _recursive_: false              # required: the spec builds its own nodes, each exactly once
    nodes:                          # named objects; each a `_target_` config, a literal, or a reference
      digits: {_target_: lumo_hydra.data_digits.load, split: train}
      norm: {_target_: lumo_hydra.data_digits.Normalize}
    inputs:                         # input name -> source (a reference, a `_target_` config, a literal
      xs: {source: "@digits.images", transform: "@norm"}   # list, or {source:, transform:})
      ys: "@digits.targets"         # "@node.key": the column `key` of a dict-like node (or an attribute)
    outputs:                        # output name -> {input:, transform:} | {idx: true} | input name
      xs1: {input: xs, transform: {_target_: lumo_hydra.data_digits.RandomAugment, strength: 0.3}}
      ys: {input: ys}
    global_transform: null          # a reference or a `_target_` config (dict in, dict out)
    mode: zip                       # zip | chain | item
    subset: null                    # a list of ints, {start:, stop:, step:}, a reference or a config
    repeat: null                    # applied after subset
    scale_to_size: null             # applied after repeat

A string ``"@name"`` anywhere (also deep inside a node's arguments) is the object built from node
``name``; ``"@@text"`` is the literal string ``"@text"``. Every node is built once, in topological
order, and shared by everything that references it; nodes nothing references are not built.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Iterator, Optional, Union

from lumo_hydra.data.builder import DatasetBuilder
from lumo_hydra.errors import DatasetSpecError, LumoValueError

__all__ = ["build", "build_from_spec", "DatasetSpecError", "instantiate_node", "SPEC_KEYS"]

SPEC_KEYS = ("nodes", "inputs", "outputs", "global_transform", "mode", "subset", "repeat", "scale_to_size")
_HYDRA_KEYS = ("_target_", "_recursive_", "_convert_", "_partial_", "_args_")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*\Z")
_REF = re.compile(r"@([A-Za-z_][A-Za-z0-9_\-]*)((?:\.[^.]+)*)\Z")


def instantiate_node(config: Mapping) -> Any:
    """Build one ``_target_`` config (references already replaced by objects) with Hydra's full
    ``instantiate``; used for nodes that set ``_recursive_`` or ``_convert_``.

    This and ``_hydra_callable`` are the only places that call ``hydra.utils.instantiate`` (Hydra 1.4
    will want framework calls wrapped in ``hydra.utils.target_whitelist``: add it here for 1.4).
    """
    from hydra.utils import instantiate

    return instantiate(config)


_CALLABLES: dict = {}  # (target, allowlist override) -> Hydra's partial of the target


def _hydra_callable(target: Any) -> Any:
    """The target as Hydra's own ``_partial_: true`` object, so that calling it runs every check
    Hydra's ``instantiate`` runs (target policy: blocklist, invocation checks) without rebuilding an
    OmegaConf config per node. Cached per target name (and allowlist override)."""
    import os

    from hydra.utils import instantiate

    if not isinstance(target, str):
        return instantiate({"_target_": target, "_partial_": True})
    key = (target, os.environ.get("HYDRA_INSTANTIATE_ALLOWLIST_OVERRIDE"))
    fn = _CALLABLES.get(key)
    if fn is None:
        fn = instantiate({"_target_": target, "_partial_": True})
        if len(_CALLABLES) > 1024:
            _CALLABLES.clear()
        _CALLABLES[key] = fn
    return fn


def build(**spec: Any) -> DatasetBuilder:
    """``_target_`` of a YAML dataset spec: returns the ready ``DatasetBuilder`` (keys: ``SPEC_KEYS``)."""
    return _SpecBuilder(spec).run()


def build_from_spec(spec: Union[str, Path, Mapping, Any], **overrides: Any) -> DatasetBuilder:
    """Build from a spec given as a YAML file path, a dict or a DictConfig, merged with ``overrides``
    (nested dicts, e.g. ``nodes={'digits': {'split': 'test'}}``)."""
    from omegaconf import OmegaConf

    if isinstance(spec, (str, Path)):
        cfg: Any = OmegaConf.load(spec)
    elif OmegaConf.is_config(spec):
        cfg = spec
    elif isinstance(spec, Mapping):
        cfg = None
    else:
        raise DatasetSpecError(f"a dataset spec must be a YAML path, a dict or a DictConfig, got {type(spec).__name__}")
    if cfg is not None:
        if overrides:
            cfg = OmegaConf.merge(cfg, overrides)
        data = OmegaConf.to_container(cfg, resolve=True)
    else:
        data = _merge(dict(spec), overrides)  # type: ignore[arg-type]
    if not isinstance(data, dict):
        raise DatasetSpecError(f"a dataset spec must be a mapping, got {type(data).__name__}")
    return build(**{str(k): v for k, v in data.items() if k not in _HYDRA_KEYS})


def _merge(base: dict, extra: Mapping) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


def _plain(value: Any) -> Any:
    """DictConfig/ListConfig -> plain containers (interpolations resolved); other values unchanged."""
    from omegaconf import OmegaConf

    if OmegaConf.is_config(value):
        return OmegaConf.to_container(value, resolve=True)
    return value


def _is_ref(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("@") and not value.startswith("@@")


def _walk_refs(value: Any, path: str) -> Iterator[tuple[str, str, str]]:
    """Yield ``(node name, reference text, key path)`` for every reference inside ``value``."""
    if isinstance(value, str):
        if _is_ref(value):
            m = _REF.match(value)
            if m is None:
                raise DatasetSpecError(
                    f"invalid reference {value!r} at {path}; allowed: '@name' or '@name.key' "
                    "(a node name; use '@@' for a literal '@')"
                )
            yield m.group(1), value, path
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _walk_refs(v, f"{path}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _walk_refs(v, f"{path}[{i}]")


class _SpecBuilder:
    def __init__(self, spec: Mapping) -> None:
        unknown = [k for k in spec if k not in SPEC_KEYS]
        if unknown:
            raise DatasetSpecError(f"unknown dataset spec key(s) {unknown}; allowed: {list(SPEC_KEYS)}")
        self.spec = {k: _plain(v) for k, v in spec.items()}
        nodes = self.spec.get("nodes") or {}
        if not isinstance(nodes, Mapping):
            raise DatasetSpecError(f"'nodes' must be a mapping of name -> config, got {type(nodes).__name__}")
        for name in nodes:
            if not isinstance(name, str) or not _NAME.match(name):
                raise DatasetSpecError(
                    f"invalid node name {name!r} at nodes; allowed: letters, digits, '_' and '-', not starting with a digit"
                )
        self.nodes: dict = dict(nodes)
        self.built: dict[str, Any] = {}
        self.deps: dict[str, list[str]] = {}
        for name, cfg in self.nodes.items():
            self.deps[name] = self._check_refs(cfg, f"nodes.{name}")
        self._check_cycles()

    # ------------------------------------------------------------------ static checks
    def _check_refs(self, value: Any, path: str) -> list[str]:
        names = []
        for name, text, where in _walk_refs(value, path):
            if name not in self.nodes:
                raise DatasetSpecError(
                    f"unknown reference {text!r} at {where}; known nodes: {sorted(self.nodes)}"
                )
            if name not in names:
                names.append(name)
        return names

    def _check_cycles(self) -> None:
        state: dict[str, int] = {}  # 1: on the current path, 2: done
        stack: list[str] = []

        def visit(name: str) -> None:
            state[name] = 1
            stack.append(name)
            for dep in self.deps[name]:
                if state.get(dep) == 1:
                    cycle = stack[stack.index(dep):] + [dep]
                    raise DatasetSpecError(f"cycle in dataset spec nodes: {' -> '.join(cycle)}")
                if dep not in state:
                    visit(dep)
            stack.pop()
            state[name] = 2

        for name in self.nodes:
            if name not in state:
                visit(name)

    # ------------------------------------------------------------------ building
    def node(self, name: str) -> Any:
        """The object of node ``name``, built once (its dependencies first; the graph has no cycles)."""
        if name in self.built:
            return self.built[name]
        for dep in self.deps[name]:
            self.node(dep)
        obj = self.evaluate(self.nodes[name], f"nodes.{name}", node=name)
        self.built[name] = obj
        return obj

    def deref(self, text: str, path: str) -> Any:
        m = _REF.match(text)
        if m is None:  # pragma: no cover - _walk_refs checked every reference already
            raise DatasetSpecError(f"invalid reference {text!r} at {path}")
        obj = self.node(m.group(1))
        seen = "@" + m.group(1)
        for key in filter(None, m.group(2).split(".")):
            obj = _select(obj, key, seen, path)
            seen += "." + key
        return obj

    def substitute(self, value: Any, path: str) -> Any:
        """Replace references by objects inside a `_target_` config (Hydra builds nested targets)."""
        if isinstance(value, str):
            if _is_ref(value):
                return self.deref(value, path)
            return value[1:] if value.startswith("@@") else value
        if isinstance(value, Mapping):
            return {k: self.substitute(v, f"{path}.{k}") for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.substitute(v, f"{path}[{i}]") for i, v in enumerate(value)]
        return value

    def evaluate(self, value: Any, path: str, node: Optional[str] = None) -> Any:
        """A spec value as an object: references resolved, `_target_` configs built (inner ones first).

        Arguments reach targets as plain Python lists and dicts (like Hydra's ``_convert_: all``); a
        config that sets ``_recursive_`` or ``_convert_`` is handed whole to Hydra's ``instantiate``.
        """
        if isinstance(value, str):
            return self.substitute(value, path)
        if isinstance(value, Mapping):
            if "_target_" not in value:
                return {k: self.evaluate(v, f"{path}.{k}", node) for k, v in value.items()}
            try:
                if "_recursive_" in value or "_convert_" in value:
                    return instantiate_node(self.substitute(value, path))
                raw_args = value.get("_args_", ())
                if not isinstance(raw_args, (list, tuple)):
                    raise DatasetSpecError(f"_args_ at {path} must be a list, got {type(raw_args).__name__}")
                args = [self.evaluate(v, f"{path}._args_[{i}]", node) for i, v in enumerate(raw_args)]
                kwargs = {
                    k: self.evaluate(v, f"{path}.{k}", node)
                    for k, v in value.items() if k not in ("_target_", "_args_", "_partial_")
                }
                fn = _hydra_callable(value["_target_"])
                if value.get("_partial_", False):
                    return functools.partial(fn, *args, **kwargs)
                return fn(*args, **kwargs)
            except DatasetSpecError:
                raise
            except Exception as e:  # name the node and where it is; keep the original as the cause
                cause = e.__cause__ if type(e).__name__ == "InstantiationException" and e.__cause__ else e
                what = f"node {node!r}" if node else f"the config at {path}"
                raise DatasetSpecError(
                    f"{what} ({value['_target_']}) failed to build at {path}: {type(cause).__name__}: {cause}"
                ) from e
        if isinstance(value, (list, tuple)):
            return [self.evaluate(v, f"{path}[{i}]", node) for i, v in enumerate(value)]
        return value

    def run(self) -> DatasetBuilder:
        spec = self.spec
        inputs = spec.get("inputs") or {}
        outputs = spec.get("outputs") or {}
        for key, val in (("inputs", inputs), ("outputs", outputs)):
            if not isinstance(val, Mapping):
                raise DatasetSpecError(f"'{key}' must be a mapping of name -> spec, got {type(val).__name__}")
        for key in ("global_transform", "subset"):
            self._check_refs(spec.get(key), key)

        # outputs first (statically), so unused inputs are never built
        plan: list[tuple[str, Optional[str], Any]] = []
        for outkey, out in outputs.items():
            path = f"outputs.{outkey}"
            if out is None:
                out = {"input": outkey}
            elif isinstance(out, str) and not _is_ref(out):
                out = {"input": out}
            if not isinstance(out, Mapping):
                raise DatasetSpecError(
                    f"invalid output spec at {path}: {out!r}; allowed: {{input: <name>, transform: ...}}, "
                    "{idx: true} or an input name"
                )
            bad = [k for k in out if k not in ("input", "transform", "idx")]
            if bad:
                raise DatasetSpecError(f"unknown key(s) {bad} at {path}; allowed: ['input', 'transform', 'idx']")
            self._check_refs(out.get("transform"), f"{path}.transform")
            if out.get("idx"):
                if "input" in out or out.get("transform") is not None:
                    raise DatasetSpecError(f"{path}: an idx output takes no 'input' or 'transform'")
                plan.append((outkey, None, None))
                continue
            name = out.get("input")
            if name not in inputs:
                raise DatasetSpecError(
                    f"unknown input {name!r} at {path}.input; known inputs: {list(inputs)}"
                )
            plan.append((outkey, name, out.get("transform")))

        used = {name for _, name, _ in plan if name is not None}
        ds = DatasetBuilder()
        for name, src in inputs.items():
            path = f"inputs.{name}"
            self._check_refs(src, path)
            if name not in used:
                continue  # inputs no output uses are never built nor read
            transform = None
            if isinstance(src, Mapping) and "source" in src and "_target_" not in src:
                bad = [k for k in src if k not in ("source", "transform")]
                if bad:
                    raise DatasetSpecError(f"unknown key(s) {bad} at {path}; allowed: ['source', 'transform']")
                transform = self.evaluate(src.get("transform"), f"{path}.transform")
                src = src["source"]
                path += ".source"
            obj = self.evaluate(src, path)
            self._wrap(ds.add_input, path, name, obj, transform)

        for outkey, name, tf in plan:
            path = f"outputs.{outkey}"
            if name is None:
                self._wrap(ds.add_idx, path, outkey)
            else:
                self._wrap(ds.add_output, path, name, outkey, self.evaluate(tf, f"{path}.transform"))

        glob = spec.get("global_transform")
        if glob is not None:
            self._wrap(ds.add_global_transform, "global_transform", self.evaluate(glob, "global_transform"))
        mode = spec.get("mode")
        if mode is not None:
            self._wrap(ds.set_mode, "mode", mode)
        sub = spec.get("subset")
        if sub is not None:
            if isinstance(sub, Mapping) and "_target_" not in sub:
                bad = [k for k in sub if k not in ("start", "stop", "step")]
                if bad:
                    raise DatasetSpecError(f"unknown key(s) {bad} at subset; allowed: ['start', 'stop', 'step']")
                sub = range(len(ds))[slice(sub.get("start"), sub.get("stop"), sub.get("step"))]
            else:
                sub = self.evaluate(sub, "subset")
            self._wrap(ds.subset, "subset", sub)
        if spec.get("repeat") is not None:
            self._wrap(ds.repeat, "repeat", spec["repeat"])
        if spec.get("scale_to_size") is not None:
            self._wrap(ds.scale_to_size, "scale_to_size", spec["scale_to_size"])
        return ds

    @staticmethod
    def _wrap(fn: Any, path: str, *args: Any) -> Any:
        """Call a builder method; its error gets the spec's key path in front (same exception type)."""
        try:
            return fn(*args)
        except LumoValueError as e:
            if isinstance(e, DatasetSpecError):
                raise
            raise type(e)(f"{path}: {e}") from e


def _select(obj: Any, key: str, seen: str, path: str) -> Any:
    """``obj[key]`` for dict-like nodes (and ``obj[int]`` for sequences), else ``getattr(obj, key)``."""
    if isinstance(obj, Mapping) or (hasattr(obj, "keys") and hasattr(obj, "__getitem__")):
        try:
            return obj[key]
        except (KeyError, TypeError, IndexError):
            keys = list(obj.keys())[:20]
            raise DatasetSpecError(f"{seen} has no key {key!r} (reference at {path}); keys: {keys}") from None
    if key.isdigit() and isinstance(obj, (list, tuple)):
        try:
            return obj[int(key)]
        except IndexError:
            raise DatasetSpecError(f"{seen} has {len(obj)} items, no item {key} (reference at {path})") from None
    try:
        return getattr(obj, key)
    except AttributeError:
        raise DatasetSpecError(
            f"{seen} ({type(obj).__name__}) has no attribute or key {key!r} (reference at {path})"
        ) from None
