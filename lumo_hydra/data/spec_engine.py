"""The engine of the YAML dataset specs: builds any builder class from a spec mapping.

It imports no builder: the caller passes the class (``DatasetBuilder`` or a subclass), so
``MyBuilder.from_spec(...)`` returns a ``MyBuilder`` and :mod:`lumo_hydra.data.builder` can use this
module without a cycle. The public entry points (the ``_target_`` ``build``) are in
:mod:`lumo_hydra.data.spec`; the spec syntax is in its docstring and in ``docs/dataset.md``.

Hydra is reached only through :mod:`lumo_hydra._hydra.instantiate` (imported on first use).
"""
from __future__ import annotations

import functools
import re
import types
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from lumo_hydra.errors import DatasetSpecError, LumoValueError

__all__ = ["SPEC_KEYS", "build_with", "build_from_spec_with", "load_spec", "instantiate_node"]

B = TypeVar("B")

SPEC_KEYS = ("nodes", "inputs", "outputs", "global_transform", "mode", "subset", "repeat", "scale_to_size")
_HYDRA_KEYS = ("_target_", "_recursive_", "_convert_", "_partial_", "_args_")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*\Z")
_REF = re.compile(r"@([A-Za-z_][A-Za-z0-9_\-]*)((?:\.[^.]+)*)\Z")


def instantiate_node(config: Mapping) -> Any:
    """Build one ``_target_`` config (references already replaced by objects) with Hydra's full
    ``instantiate``; used for nodes that set ``_recursive_`` or ``_convert_``."""
    from lumo_hydra._hydra.instantiate import instantiate  # imports hydra: only when a spec needs it

    return instantiate(config)


def _target_callable(target: Any) -> Any:
    from lumo_hydra._hydra.instantiate import target_callable  # imports hydra: only when a spec needs it

    return target_callable(target)


def build_with(cls: type[B], spec: Mapping) -> B:
    """Build ``cls()`` (a ``DatasetBuilder`` class) from the spec keys ``SPEC_KEYS`` in ``spec``."""
    return _SpecBuilder(spec).run(cls)


def load_spec(spec: str | Path | Mapping | Any, overrides: Mapping) -> dict:
    """A spec given as a YAML file path, a dict or a DictConfig, merged with ``overrides`` (nested
    dicts), as a plain dict without Hydra's own keys (``_target_``, ``_recursive_``, ...)."""
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
    return {str(k): v for k, v in data.items() if k not in _HYDRA_KEYS}


def build_from_spec_with(cls: type[B], spec: str | Path | Mapping | Any, **overrides: Any) -> B:
    """Build ``cls()`` from a YAML path, a dict or a DictConfig merged with ``overrides``."""
    return build_with(cls, load_spec(spec, overrides))


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


def _bad_keys(value: Mapping, allowed: tuple, path: str) -> None:
    bad = [k for k in value if k not in allowed]
    if bad:
        raise DatasetSpecError(f"unknown key(s) {bad} at {path}; allowed: {list(allowed)}")


# One output of the plan: (output name, input name or None for an idx output, its transform spec).
_PlanEntry = tuple[str, str | None, Any]


class _SpecBuilder:
    """One build of one spec: static checks first, then nodes built on demand, each exactly once."""

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
                    f"invalid node name {name!r} at nodes; allowed: letters, digits, '_' and '-', "
                    "not starting with a digit"
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

    # ------------------------------------------------------------------ building values
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
        """The object a reference ``@name.key...`` names."""
        m = _REF.match(text)
        if m is None:  # pragma: no cover - _walk_refs checked every reference already
            raise DatasetSpecError(f"invalid reference {text!r} at {path}")
        obj = self.node(m.group(1))
        seen = "@" + m.group(1)
        keys = [k for k in m.group(2).split(".") if k]
        for key in keys:
            obj = _select(obj, key, seen, path)
            seen += "." + key
        if keys and callable(obj):  # a node was built through Hydra; what a reference reaches inside it was not
            _check_reached_callable(obj, text, path)
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

    def evaluate(self, value: Any, path: str, node: str | None = None) -> Any:
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
                return self._call_target(value, path, node)
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

    def _call_target(self, value: Mapping, path: str, node: str | None) -> Any:
        """Build one `_target_` config: arguments evaluated first, then the target called through Hydra."""
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
        fn = _target_callable(value["_target_"])
        if value.get("_partial_", False):
            return functools.partial(fn, *args, **kwargs)
        return fn(*args, **kwargs)

    # ------------------------------------------------------------------ assembling the builder
    def run(self, cls: type[B]) -> B:
        """Check the spec, then build ``cls()`` with its inputs, outputs, global transform and views."""
        spec = self.spec
        inputs, outputs = self._sections()
        plan = [self._plan_output(outkey, out, inputs) for outkey, out in outputs.items()]
        ds: Any = cls()
        self._add_inputs(ds, inputs, {name for _, name, _ in plan if name is not None})
        self._add_outputs(ds, plan)
        glob = spec.get("global_transform")
        if glob is not None:
            self._wrap(ds.add_global_transform, "global_transform", self.evaluate(glob, "global_transform"))
        if spec.get("mode") is not None:
            self._wrap(ds.set_mode, "mode", spec["mode"])
        self._apply_views(ds)
        return ds

    def _sections(self) -> tuple[Mapping, Mapping]:
        """The ``inputs`` and ``outputs`` mappings; references of the other sections checked."""
        inputs = self.spec.get("inputs") or {}
        outputs = self.spec.get("outputs") or {}
        for key, val in (("inputs", inputs), ("outputs", outputs)):
            if not isinstance(val, Mapping):
                raise DatasetSpecError(f"'{key}' must be a mapping of name -> spec, got {type(val).__name__}")
        for key in ("global_transform", "subset"):
            self._check_refs(self.spec.get(key), key)
        return inputs, outputs

    def _plan_output(self, outkey: str, out: Any, inputs: Mapping) -> _PlanEntry:
        """One output, checked statically (before any input is built, so unused inputs never are)."""
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
        _bad_keys(out, ("input", "transform", "idx"), path)
        self._check_refs(out.get("transform"), f"{path}.transform")
        if out.get("idx"):
            if "input" in out or out.get("transform") is not None:
                raise DatasetSpecError(f"{path}: an idx output takes no 'input' or 'transform'")
            return (outkey, None, None)
        name = out.get("input")
        if name not in inputs:
            raise DatasetSpecError(f"unknown input {name!r} at {path}.input; known inputs: {list(inputs)}")
        return (outkey, name, out.get("transform"))

    def _add_inputs(self, ds: Any, inputs: Mapping, used: set) -> None:
        for name, src in inputs.items():
            path = f"inputs.{name}"
            self._check_refs(src, path)
            if name not in used:
                continue  # inputs no output uses are never built nor read
            transform = None
            if isinstance(src, Mapping) and "source" in src and "_target_" not in src:
                _bad_keys(src, ("source", "transform"), path)
                transform = self.evaluate(src.get("transform"), f"{path}.transform")
                src = src["source"]
                path += ".source"
            self._wrap(ds.add_input, path, name, self.evaluate(src, path), transform)

    def _add_outputs(self, ds: Any, plan: list[_PlanEntry]) -> None:
        for outkey, name, tf in plan:
            path = f"outputs.{outkey}"
            if name is None:
                self._wrap(ds.add_idx, path, outkey)
            else:
                self._wrap(ds.add_output, path, name, outkey, self.evaluate(tf, f"{path}.transform"))

    def _apply_views(self, ds: Any) -> None:
        """``subset``, then ``repeat``, then ``scale_to_size``."""
        sub = self.spec.get("subset")
        if sub is not None:
            if isinstance(sub, Mapping) and "_target_" not in sub:
                _bad_keys(sub, ("start", "stop", "step"), "subset")
                sub = range(len(ds))[slice(sub.get("start"), sub.get("stop"), sub.get("step"))]
            else:
                sub = self.evaluate(sub, "subset")
            self._wrap(ds.subset, "subset", sub)
        for key in ("repeat", "scale_to_size"):
            if self.spec.get(key) is not None:
                self._wrap(getattr(ds, key), key, self.spec[key])

    @staticmethod
    def _wrap(fn: Any, path: str, *args: Any) -> Any:
        """Call a builder method; its error gets the spec's key path in front (same exception type)."""
        try:
            return fn(*args)
        except LumoValueError as e:
            if isinstance(e, DatasetSpecError):
                raise
            raise type(e)(f"{path}: {e}") from e


def _dotted_name(obj: Any) -> str | None:
    """``module.qualname`` of a class or function, None for anything a ``_target_`` string cannot name."""
    if getattr(obj, "__self__", None) is not None and not isinstance(obj.__self__, (type, types.ModuleType)):
        return None  # a bound method of an object (`@p.write_text`), or a builtin's instance method
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or "<" in qualname:
        return None  # lambdas, local functions, objects without a name
    return f"{module}.{qualname}"


def _check_reached_callable(obj: Any, text: str, path: str) -> None:
    """A callable a reference reaches through ``.key`` segments must be one Hydra accepts as ``_target_``:
    a class or function named by its dotted path (which leads back to this very object) that Hydra's
    target policy allows, a ``functools.partial`` of such, or an instance of such a class. Anything else
    (a bound method such as ``@path.write_text``, a lambda, a local function) is refused."""
    if isinstance(obj, functools.partial):
        _check_reached_callable(obj.func, text, path)
        return
    is_fn = isinstance(obj, type) or hasattr(obj, "__code__") or type(obj).__name__ in (
        "builtin_function_or_method", "method", "method-wrapper", "wrapper_descriptor", "method_descriptor")
    target = obj if is_fn else type(obj)  # calling an instance runs its class's own __call__
    name = _dotted_name(target)
    what = f"{type(obj).__name__} {getattr(obj, '__qualname__', '') or type(obj).__qualname__}".strip()
    allowed = ("allowed: a node, a data item or attribute of a node's value, or a class or function "
               "Hydra accepts as a `_target_` (make other callables a node with `_target_`)")
    if name is None:
        raise DatasetSpecError(f"reference {text!r} at {path} reaches a callable ({what}) that is not a "
                               f"`_target_` Hydra would accept; {allowed}")
    try:
        located = _target_callable(name)
    except Exception as e:  # Hydra's InstantiationException: blocked, or not locatable
        first = " ".join(str(e).split("full_key:")[0].split()) or type(e).__name__
        raise DatasetSpecError(f"reference {text!r} at {path} reaches {name!r}, which Hydra refuses as a "
                               f"`_target_`: {first}; {allowed}") from None
    found = getattr(located, "func", located)
    try:
        same = found is target or found == target
    except Exception:
        same = False
    if not same:
        raise DatasetSpecError(f"reference {text!r} at {path} reaches a callable ({what}) that its name "
                               f"{name!r} does not lead back to; {allowed}")


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
    if key.startswith("_"):  # __globals__, __class__, _private: never data of a node (Hydra guards them too)
        raise DatasetSpecError(f"reference at {path}: {seen} ({type(obj).__name__}) has no key {key!r}, and "
                               f"attributes starting with '_' cannot be referenced; allowed: public attributes")
    try:
        return getattr(obj, key)
    except AttributeError:
        raise DatasetSpecError(
            f"{seen} ({type(obj).__name__}) has no attribute or key {key!r} (reference at {path})"
        ) from None
