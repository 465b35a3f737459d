"""Modules loaded on first use, so that the CLI's edge (--help, `jaxgen config`, a bad --set value) answers
without importing JAX (about a second on a 2-core CPU) while each task file keeps its Config class beside
the code that runs it.

    jnp = lazy("jax.numpy")   # nothing imported yet
    jnp.zeros(3)              # imports jax.numpy now; later lookups are plain attribute reads

Use it only in modules the light edge imports (activations, the task files); annotations stay names
(`from __future__ import annotations`), never evaluated.
"""

from __future__ import annotations

import importlib
import types
from typing import Any


class LazyModule(types.ModuleType):
    """Stands in for module `name` until an attribute is read, then imports it and takes its contents."""

    def __init__(self, name: str):
        super().__init__(name, f"lazily imported {name}")
        self.__dict__["_lazy_target"] = name

    def __getattr__(self, attr: str) -> Any:  # called only for names not yet copied in
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)  # copy, pickle and inspect probes must not trigger the import
        module = importlib.import_module(self.__dict__["_lazy_target"])
        self.__dict__.update({k: v for k, v in vars(module).items() if k != "__name__"})
        return getattr(module, attr)

    def __repr__(self) -> str:
        return f"<lazy module {self.__dict__['_lazy_target']!r}>"


def lazy(name: str) -> Any:
    """Module `name`, imported at the first attribute read."""
    return LazyModule(name)
