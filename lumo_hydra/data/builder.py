"""``DatasetBuilder``: lumo's dataset DAG (inputs -> transforms -> named outputs).

A builder wires *inputs* (data sources: sequences, numpy arrays, torch tensors, anything with
``__getitem__``/``__len__``, or iterable-only sources) to named *outputs* through transforms::

    ds = (DatasetBuilder()
          .add_input('xs', images)
          .add_input('ys', labels)
          .add_output('xs', 'xs1', weak_aug)
          .add_output('xs', 'xs2', strong_aug)
          .add_output('ys', 'ys'))
    ds[0]  # {'xs1': ..., 'xs2': ..., 'ys': ...}

Per item, each *used* input is read once, its input transform (if any) runs once, and every output of
that input applies its own transform to that value. Then the global transform (dict in, dict out) runs,
and the mode shapes the result: ``zip`` (a dict, the default), ``chain`` (a list in the order the
outputs were added) or ``item`` (the value of the single output).

This module never imports torch at import time. ``DatasetBuilder`` is a plain class with
``__getitem__``/``__len__``/``__iter__``, which ``torch.utils.data.DataLoader`` accepts as a map-style
dataset; ``ds.DataLoader(**kwargs)`` imports torch only when called. See ``docs/dataset.md``.
"""
from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple, TypeVar

from lumo_hydra.data.checks import (
    as_index_list,
    as_int,
    check_callable,
    check_name,
    describe,
    is_dataframe,
    non_negative_int,
    source_length,
)
from lumo_hydra.data.spec_engine import build_from_spec_with
from lumo_hydra.errors import DataIndexError, DataTypeError, DataValueError

__all__ = ["DatasetBuilder", "DataValueError", "DataTypeError", "DataIndexError"]

Transform = Callable[[Any], Any]
_B = TypeVar("_B", bound="DatasetBuilder")
DictTransform = Callable[[dict], Any]

_MODES = ("zip", "chain", "item")


class _Output(NamedTuple):
    input: str | None  # None: the item's (mapped) index, see add_idx
    transform: Transform | None


class _Plan(NamedTuple):
    """What ``__getitem__`` runs, compiled once per structure change (never pickled)."""

    reads: tuple  # ((source or None for the index, input transform or None), ...) for used inputs only
    writes: tuple  # ((outkey, position in reads, transform or None), ...) in the order outputs were added
    glob: DictTransform | None
    mode: str
    keys: tuple  # output names, in order
    n: int | None  # the view's length (None: unsized)
    mod: int  # when the view is stretched (scale_to_size/repeat): the length it cycles through, else 0
    sub: array | None  # the explicit source index map of subset(), if any


class DatasetBuilder:
    """A dataset assembled from named inputs, transforms and named outputs (lumo's DatasetBuilder).

    Fixes lumo 1.1's known bugs: ``copy()`` is a real copy, iteration yields exactly what indexing
    yields (subset, size, global transform and mode included), bad input raises clear errors instead
    of assertions, and inputs that no output uses are never read.
    """

    def __init__(self) -> None:
        self._sources: dict[str, Any] = {}
        self._input_tf: dict[str, Transform | None] = {}
        self._lengths: dict[str, int | None] = {}  # None: the input is not sized
        self._outputs: dict[str, _Output] = {}
        self._global_tf: DictTransform | None = None
        self._mode = "zip"
        # The view: item i of the builder is source item sub[i % base] (sub None: i % base).
        self._sub: array | None = None
        self._size: int | None = None  # length set by scale_to_size/repeat (None: the base length)
        self._plan: _Plan | None = None

    # ------------------------------------------------------------------ building
    def add_input(self, name: str, source: Any, transform: Transform | None = None) -> DatasetBuilder:
        """Add a data source named ``name``; ``transform`` runs once per item, shared by its outputs."""
        check_name("input name", name)
        if name in self._sources:
            raise DataValueError(f"duplicate input name {name!r}; inputs so far: {list(self._sources)}")
        check_callable(f"transform of input {name!r}", transform)
        if isinstance(source, Mapping) or is_dataframe(source):
            cols = list(source.keys())[:10]
            raise DataTypeError(
                f"input {name!r} is a dict-like source ({type(source).__name__}) indexed by keys, not by "
                f"position; add one column instead, e.g. add_input({name!r}, source[{cols[0]!r}]) "
                f"(columns: {cols})" if cols else
                f"input {name!r} is an empty dict-like source ({type(source).__name__}); add a column instead"
            )
        if not hasattr(source, "__getitem__") and not isinstance(source, Iterable):
            raise DataTypeError(
                f"input {name!r} must be indexable (have __getitem__, like a list, a numpy array or a tensor) "
                f"or iterable, got {type(source).__name__}"
            )
        length = source_length(source)
        if length is not None:
            sized = {k: n for k, n in self._lengths.items() if n is not None}
            if sized and length != next(iter(sized.values())):
                listing = ", ".join(f"{k}={n}" for k, n in {**sized, name: length}.items())
                raise DataValueError(
                    f"input {name!r} has length {length}, other inputs differ: {listing}; "
                    "every sized input must have the same length"
                )
            if self._sub is not None or self._size is not None:
                pass  # same length as the others: the view stays valid
        self._sources[name] = source
        self._input_tf[name] = transform
        self._lengths[name] = length
        self._plan = None
        return self

    def add_input_transform(self, name: str, transform: Transform | None = None) -> DatasetBuilder:
        """Set the transform of input ``name`` (runs once per item, before its outputs' transforms)."""
        self._known_input(name, "input")
        check_callable(f"transform of input {name!r}", transform)
        self._input_tf[name] = transform
        self._plan = None
        return self

    set_input_transform = add_input_transform

    def add_output(self, name: str, outkey: str, transform: Transform | None = None) -> DatasetBuilder:
        """Add output ``outkey`` that takes input ``name`` through ``transform`` (None: unchanged)."""
        self._known_input(name, "input of output " + repr(outkey))
        self._new_output(outkey)
        check_callable(f"transform of output {outkey!r}", transform)
        self._outputs[outkey] = _Output(name, transform)
        self._plan = None
        return self

    def add_output_transform(self, outkey: str, transform: Transform | None = None) -> DatasetBuilder:
        """Set the transform of output ``outkey``."""
        if outkey not in self._outputs:
            raise DataValueError(f"unknown output {outkey!r}; outputs: {list(self._outputs)}")
        check_callable(f"transform of output {outkey!r}", transform)
        self._outputs[outkey] = self._outputs[outkey]._replace(transform=transform)
        self._plan = None
        return self

    set_output_transform = add_output_transform

    def add_idx(self, name: str) -> DatasetBuilder:
        """Add output ``name`` holding the item's index into the sources (after subset/repeat mapping)."""
        self._new_output(name)
        self._outputs[name] = _Output(None, None)
        self._plan = None
        return self

    def add_global_transform(self, transform: DictTransform | None) -> DatasetBuilder:
        """Set a transform that gets the dict of all outputs and returns the new dict (None removes it)."""
        check_callable("global transform", transform)
        self._global_tf = transform
        self._plan = None
        return self

    def zip(self) -> DatasetBuilder:
        """Items are dicts ``{outkey: value}`` in the order outputs were added (the default)."""
        return self._set_mode("zip")

    def chain(self) -> DatasetBuilder:
        """Items are lists of output values, in the order outputs were added."""
        return self._set_mode("chain")

    def item(self) -> DatasetBuilder:
        """Items are the value of the single output (exactly one output is required)."""
        return self._set_mode("item")

    def _set_mode(self, mode: str) -> DatasetBuilder:
        self._mode = mode
        self._plan = None
        return self

    def set_mode(self, mode: str) -> DatasetBuilder:
        """Set the mode by name: ``'zip'``, ``'chain'`` or ``'item'``."""
        if mode not in _MODES:
            raise DataValueError(f"invalid mode {mode!r}; allowed: {list(_MODES)}")
        return self._set_mode(mode)

    # ------------------------------------------------------------------ views
    def subset(self, indices: Sequence[int] | Any, copy: bool = False) -> DatasetBuilder:
        """Keep only the items at ``indices`` (positions in the current view; a boolean mask works too).

        Changes this builder and returns it, or a changed copy when ``copy=True``. Views compose:
        ``ds.subset(a).subset(b)`` picks ``b`` among the items of ``ds.subset(a)``.
        """
        target = self.copy() if copy else self
        n = target._view_len("subset()")
        idx = as_index_list(indices, n)
        target._sub = array("q", (target.map_index(i) for i in idx))
        target._size = None
        target._plan = None
        return target

    def scale_to_size(self, size: int) -> DatasetBuilder:
        """Make the builder exactly ``size`` items long, cycling through the current view."""
        size = non_negative_int("scale_to_size(size)", size)
        base = self._view_len("scale_to_size()")
        if base == 0 and size > 0:
            raise DataValueError(f"scale_to_size({size}): the builder is empty, there is nothing to repeat")
        self._materialize_stretch()
        self._size = size
        self._plan = None
        return self

    def repeat(self, multiple: int) -> DatasetBuilder:
        """Make the builder ``multiple`` times as long, cycling through the current view."""
        multiple = non_negative_int("repeat(multiple)", multiple)
        base = self._view_len("repeat()")
        self._materialize_stretch()
        self._size = base * multiple
        self._plan = None
        return self

    def _materialize_stretch(self) -> None:
        # A stretch on a stretched view: turn the current view into an explicit index map first.
        if self._size is not None:
            self._sub = array("q", (self.map_index(i) for i in range(self._size)))
            self._size = None

    def map_index(self, index: int) -> int:
        """Map a position in the builder to the index read from the sources."""
        n = self._view_len_or_none()
        i = as_int(index)
        if n is None:
            return i
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise DataIndexError(f"index {index} out of range for a DatasetBuilder of length {n}")
        sub = self._sub
        if self._size is not None:
            i %= len(sub) if sub is not None else self._base_len()  # type: ignore[operator]
        return sub[i] if sub is not None else i

    def _base_len(self) -> int | None:
        if self._sub is not None:
            return len(self._sub)
        for n in self._lengths.values():
            if n is not None:
                return n
        return None

    def _view_len_or_none(self) -> int | None:
        return self._size if self._size is not None else self._base_len()

    def _view_len(self, what: str) -> int:
        n = self._view_len_or_none()
        if n is None:
            raise DataTypeError(
                f"{what} needs a sized builder, but no input has a length "
                f"(inputs: {list(self._sources) or 'none'}); add a sized input first"
            )
        return n

    # ------------------------------------------------------------------ reading
    def _compile(self) -> _Plan:
        used: dict[str | None, int] = {}
        reads: list = []
        writes: list = []
        for key, out in self._outputs.items():
            if out.input not in used:
                used[out.input] = len(reads)
                if out.input is None:
                    reads.append((None, None))
                else:
                    reads.append((self._sources[out.input], self._input_tf[out.input]))
            writes.append((key, used[out.input], out.transform))
        if self._mode == "item" and len(writes) != 1:
            raise DataValueError(
                f"item() mode needs exactly one output, the builder has {len(writes)}: {list(self._outputs)}"
            )
        n = self._view_len_or_none()
        mod = (self._base_len() or 0) if self._size is not None else 0
        plan = _Plan(
            tuple(reads), tuple(writes), self._global_tf, self._mode, tuple(self._outputs), n, mod, self._sub
        )
        self._plan = plan
        return plan

    def __getitem__(self, index: int) -> Any:
        reads, writes, glob, mode, keys, n, mod, sub = self._plan or self._compile()
        i = index if type(index) is int else as_int(index)
        if n is not None:
            if i < 0:
                i += n
            if not 0 <= i < n:
                raise DataIndexError(f"index {index} out of range for a DatasetBuilder of length {n}")
            if mod:
                i %= mod
            if sub is not None:
                i = sub[i]
        values = []
        for src, tf in reads:
            if src is None:
                v = i
            else:
                try:
                    v = src[i]
                except TypeError as e:
                    if not hasattr(src, "__getitem__"):
                        raise self._not_indexable(src) from e
                    raise
            values.append(v if tf is None else tf(v))
        out = {}
        for key, pos, tf in writes:
            v = values[pos]
            out[key] = v if tf is None else tf(v)
        if glob is not None:
            out = glob(out)
        if mode == "zip":
            return out
        if mode == "chain":
            return [out[k] for k in keys]
        return out[keys[0]]

    def _not_indexable(self, src: Any) -> DataTypeError:
        name = next((k for k, s in self._sources.items() if s is src), "?")
        return DataTypeError(
            f"input {name!r} ({type(src).__name__}) cannot be indexed, it is only iterable; "
            "iterate the builder (for item in ds) instead of ds[i]"
        )

    @staticmethod
    def _emit(plan: _Plan, values: list) -> Any:
        out = {}
        for key, pos, tf in plan.writes:
            v = values[pos]
            out[key] = v if tf is None else tf(v)
        if plan.glob is not None:
            out = plan.glob(out)
        if plan.mode == "zip":
            return out
        if plan.mode == "chain":
            return [out[k] for k in plan.keys]
        return out[plan.keys[0]]

    def __iter__(self) -> Iterator[Any]:
        """Yield exactly what ``ds[0], ds[1], ...`` yields; iterable-only inputs are read by iteration."""
        plan = self._plan or self._compile()
        n = self._view_len_or_none()
        iterable_only = [src for src, _ in plan.reads if src is not None and not hasattr(src, "__getitem__")]
        if not iterable_only and n is not None:
            for i in range(n):
                yield self[i]
            return
        if self._sub is not None or self._size is not None:
            raise DataTypeError("subset(), scale_to_size() and repeat() need indexable inputs to iterate")
        iters = [None if src is None else iter(src) for src, _ in plan.reads]
        count = 0
        while n is None or count < n:
            values = []
            try:
                for it, (_, tf) in zip(iters, plan.reads):
                    v = count if it is None else next(it)
                    values.append(v if tf is None else tf(v))
            except StopIteration:
                return
            if not iters:  # only add_idx outputs and no length: nothing bounds the iteration
                return
            yield self._emit(plan, values)
            count += 1

    def __len__(self) -> int:
        n = self._view_len_or_none()
        if n is None:
            raise DataTypeError(
                f"this DatasetBuilder has no length: none of its inputs is sized (inputs: {list(self._sources)})"
            )
        return n

    # ------------------------------------------------------------------ information
    @property
    def sized(self) -> bool:
        """Whether ``len(ds)`` works (some input has a length)."""
        return self._view_len_or_none() is not None

    @property
    def iterable(self) -> bool:
        """Whether the builder can be iterated (always, once it has inputs)."""
        return bool(self._sources)

    @property
    def mode(self) -> str:
        """``'zip'``, ``'chain'`` or ``'item'``."""
        return self._mode

    @property
    def inputs(self) -> Mapping[str, Any]:
        """Read-only mapping ``input name -> source``."""
        return MappingProxyType(self._sources)

    @property
    def outputs(self) -> dict[str, Any]:
        """Mapping ``output name -> the source it reads`` (for an ``add_idx`` output: the range of indices)."""
        return {
            k: (range(len(self)) if o.input is None else self._sources[o.input]) for k, o in self._outputs.items()
        }

    @property
    def output_names(self) -> list[str]:
        """The output names, in the order they were added (the order of ``chain()`` items)."""
        return list(self._outputs)

    @property
    def subindices(self) -> list[int] | None:
        """The explicit source index map set by ``subset`` (None when there is none)."""
        return None if self._sub is None else list(self._sub)

    def get_source(self, name: str) -> Any:
        """The source of input ``name``."""
        self._known_input(name, "input")
        return self._sources[name]

    def get_input_transform(self, name: str) -> Transform | None:
        """The transform of input ``name`` (None when there is none)."""
        self._known_input(name, "input")
        return self._input_tf[name]

    def get_output_transform(self, outkey: str) -> Transform | None:
        """The transform of output ``outkey`` (None when there is none)."""
        if outkey not in self._outputs:
            raise DataValueError(f"unknown output {outkey!r}; outputs: {list(self._outputs)}")
        return self._outputs[outkey].transform

    @property
    def global_transform(self) -> DictTransform | None:
        """The global transform (None when there is none)."""
        return self._global_tf

    def copy(self: _B) -> _B:
        """An independent builder of the same class: changing the copy never changes this one (sources
        and transform objects themselves are shared, not duplicated; a subclass's own attributes are
        copied shallowly)."""
        cls = type(self)
        new = cls.__new__(cls)
        new.__dict__.update(self.__dict__)
        new._sources = dict(self._sources)
        new._input_tf = dict(self._input_tf)
        new._lengths = dict(self._lengths)
        new._outputs = dict(self._outputs)
        new._global_tf = self._global_tf
        new._mode = self._mode
        new._sub = None if self._sub is None else array("q", self._sub)
        new._size = self._size
        new._plan = None
        return new

    __copy__ = copy

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_plan"] = None  # rebuilt lazily in the worker
        return state

    def __repr__(self) -> str:
        flows = []
        for key, out in self._outputs.items():
            src = "<idx>" if out.input is None else out.input
            itf = None if out.input is None else self._input_tf.get(out.input)
            chain = [src] + [describe(f) for f in (itf, out.transform) if f is not None]
            flows.append(f"{key}: {' -> '.join(chain)}")
        size = self._view_len_or_none()
        parts = [
            f"outputs={{{', '.join(flows)}}}", f"mode={self._mode}", f"size={size if size is not None else 'unsized'}"
        ]
        if self._global_tf is not None:
            parts.append(f"global={describe(self._global_tf)}")
        unused = [k for k in self._sources if k not in {o.input for o in self._outputs.values()}]
        if unused:
            parts.append(f"unused_inputs={unused}")
        return f"DatasetBuilder({', '.join(parts)})"

    # ------------------------------------------------------------------ torch convenience
    def DataLoader(self, **kwargs: Any) -> Any:  # noqa: N802 - lumo's name
        """A ``torch.utils.data.DataLoader`` over this builder (imports torch only now).

        A sized builder is a map-style dataset; an unsized one is wrapped in an ``IterableDataset``
        that splits items between workers (worker ``w`` of ``n`` gets items ``w, w+n, ...``).
        """
        from torch.utils.data import DataLoader

        dataset: Any = self
        if not self.sized:
            from lumo_hydra.data.torch_iterable import iterable_dataset  # imports torch

            dataset = iterable_dataset(self)
        return DataLoader(dataset, **kwargs)

    DL = DataLoader

    @classmethod
    def from_spec(cls: type[_B], spec: str | Path | Mapping | Any, **overrides: Any) -> _B:
        """Build a ``cls`` from a YAML DAG spec (a path, a dict or a DictConfig) merged with nested
        ``overrides``; see ``lumo_hydra.data.spec``. Called on a subclass, it builds that subclass
        (``cls()`` with no arguments, then the spec's inputs, outputs and views)."""
        return build_from_spec_with(cls, spec, **overrides)

    # ------------------------------------------------------------------ helpers
    def _known_input(self, name: str, what: str) -> None:
        if name not in self._sources:
            raise DataValueError(f"unknown {what} {name!r}; inputs: {list(self._sources)}")

    def _new_output(self, outkey: str) -> None:
        check_name("output name", outkey)
        if outkey in self._outputs:
            raise DataValueError(f"duplicate output name {outkey!r}; outputs so far: {list(self._outputs)}")


def __getattr__(name: str) -> Any:
    if name == "_BuilderIterable":  # its older home; created on first use (it subclasses a torch class)
        from lumo_hydra.data.torch_iterable import _BuilderIterable

        return _BuilderIterable
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
