"""lumo's ``Metric``: best values by key, as ``Metric(metric_fn)`` or as ``exp.metric`` (a view of the run's
metrics store, the same numbers as ``exp.metrics``)."""
from __future__ import annotations

import json
import os
from typing import Any

from lumo_hydra.errors import LumoValueError
from lumo_hydra.store.files import atomic_write_json, to_jsonable

__all__ = ["Metric"]


class Metric:
    """``Metric(metric_fn)``: best values kept in the JSON file ``metric_fn`` (lumo kept a pickle).

    ``dump_metric(key, value, cmp, flush=True, **kw)`` returns the best value so far (``cmp`` is
    ``'max'``, ``'min'`` or ``None``: last wins); ``kw`` are stored beside it when it improves.
    ``value`` is ``{key: best, **kw}``, ``current`` the last values. ``exp.metric`` is the same API
    over the run's metrics store (``Metric(exp=exp)``).
    """

    def __init__(self, metric_fn: str | os.PathLike[str] | None = None, persistent: bool = True, *,
                 exp: Any = None) -> None:
        self._exp = exp
        self.fn = None if metric_fn is None else os.fspath(metric_fn)
        self.persistent = persistent
        self._metric: dict[str, Any] = {}
        self._last: dict[str, Any] = {}
        if exp is None and self.fn is None:
            raise LumoValueError("invalid Metric(): allowed: a metric file path, or exp=<Experiment>")
        if self.fn is not None:
            os.makedirs(os.path.dirname(os.path.abspath(self.fn)), exist_ok=True)
            if os.path.isfile(self.fn):
                with open(self.fn, encoding="utf-8") as f:
                    data = json.load(f)
                if isinstance(data, dict):
                    self._metric = data

    @property
    def value(self) -> dict[str, Any]:
        """``{key: best}`` plus the keyword values stored with each best."""
        if self._exp is None:
            return self._metric
        out: dict[str, Any] = {}
        for k, m in self._exp.metrics.items():
            out[k] = m.get("best")
            att = m.get("attachments")
            if isinstance(att, dict):
                out.update(att)
        return out

    @property
    def current(self) -> dict[str, Any]:
        """The last value of each key dumped through this object."""
        return self._last

    def dump_metric(self, key: str, value: Any, cmp: str | None = None, flush: bool = True, **kwargs: Any) -> Any:
        """Record ``value`` for ``key``; returns the best so far."""
        if cmp not in (None, "max", "min"):
            raise LumoValueError(f"invalid cmp for metric {key!r}: {cmp!r}; allowed: 'max', 'min' or None")
        if self._exp is not None:
            best = self._exp.dump_metric(key, value, cmp, **kwargs)
        else:
            old = self._metric.get(key)
            better = old is None or cmp is None or (value > old if cmp == "max" else value < old)
            if better:
                self._metric[key] = to_jsonable(value)
                self._metric.update({k: to_jsonable(v) for k, v in kwargs.items()})
            best = value if better else old
        self._last[key] = value
        self._last.update(kwargs)
        if flush:
            self.flush()
        return best

    def dump_metrics(self, dic: dict[str, Any], cmp: str | None = None) -> dict[str, Any]:
        """``dump_metric`` for each item, one flush; returns ``{key: best}``."""
        res = {k: self.dump_metric(k, v, cmp, flush=False) for k, v in dic.items()}
        self.flush()
        return res

    def flush(self) -> None:
        """Write the values now (the run's metrics files for ``exp.metric``)."""
        if self._exp is not None:
            self._exp.flush()
        elif self.persistent and self.fn is not None:
            atomic_write_json(self.fn, self._metric)
