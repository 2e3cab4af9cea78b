"""Search strategies registered by name.

Built-ins are ``module:Class`` strings, imported when asked for, so importing
this module (or listing names for ``--help``) never imports nnabla's solvers.
Third-party strategies come from the ``hwprof.strategies`` entry-point group
(loaded when first asked for by name) or from :func:`register_strategy`::

    from hwprof.search.registry import register_strategy
    register_strategy("fastest", Fastest)          # a Strategy subclass or a factory

    # pyproject.toml of a plug-in package
    [project.entry-points."hwprof.strategies"]
    fastest = "my_package.fastest:Fastest"
"""

from __future__ import annotations

import importlib
import re
from typing import Any, Callable

from hwprof.errors import UserError
from hwprof.search.strategy import KINDS

ENTRY_POINT_GROUP = "hwprof.strategies"

# name -> (target, kind, one line); target is "module:attr" or a factory
_BUILTINS: dict[str, tuple[str, str, str]] = {
    "proxyless": ("hwprof.search.proxyless:ProxylessStrategy", "one-shot",
                  "ProxylessNAS: binary gates, two sampled paths per step, only they are computed"),
    "darts": ("hwprof.search.darts:DartsStrategy", "one-shot",
              "DARTS (first order): softmax-weighted mix of every candidate"),
    "fbnet": ("hwprof.search.fbnet:FBNetStrategy", "one-shot",
              "FBNet: Gumbel-softmax sampled mix, annealed temperature"),
    "random": ("hwprof.search.random_search:RandomSearch", "multi-trial",
               "random search: sample architectures within budget, score each"),
    "evolution": ("hwprof.search.evolution:RegularizedEvolution", "multi-trial",
                  "regularized (aging) evolution of architectures within budget"),
    "spos": ("hwprof.search.spos:SPOS", "multi-trial",
             "SPOS: uniform single-path supernet training, then evolution on it"),
}

_REGISTRY: dict[str, dict[str, Any]] = {}
_plugins_scanned = False
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")


def _entry(target, kind=None, description=None, origin="python") -> dict[str, Any]:
    return {"target": target, "kind": kind, "description": description, "origin": origin}


def _ensure_builtins() -> None:
    for name, (target, kind, desc) in _BUILTINS.items():
        _REGISTRY.setdefault(name, _entry(target, kind, desc, "built-in"))


def _scan_plugins() -> None:
    """Add the entry points of group ``hwprof.strategies`` (not loaded until asked for)."""
    global _plugins_scanned
    if _plugins_scanned:
        return
    _plugins_scanned = True
    for ep in _entry_points():
        if ep.name not in _REGISTRY and _NAME.fullmatch(ep.name):
            _REGISTRY[ep.name] = _entry(ep, origin=f"entry point {ep.name} = {ep.value}")


def _entry_points() -> list:
    from importlib import metadata
    eps = metadata.entry_points()
    if hasattr(eps, "select"):
        return list(eps.select(group=ENTRY_POINT_GROUP))
    return list(eps.get(ENTRY_POINT_GROUP, []))   # Python < 3.10


def rescan_plugins() -> None:
    """Look at the installed entry points again (after installing a plug-in in this process)."""
    global _plugins_scanned
    _plugins_scanned = False
    _scan_plugins()


def register_strategy(name: str, factory_or_class: Callable | str, *, replace: bool = False,
                      kind: str | None = None, description: str | None = None) -> None:
    """Register a strategy under ``name``.

    ``factory_or_class`` is a :class:`~hwprof.search.strategy.Strategy` subclass,
    any callable that returns a strategy instance, or a ``"module:attr"`` string
    imported when the strategy is first asked for. A name already registered is
    refused unless ``replace``.
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"strategy name {name!r}: use letters, digits, '-', '_' or '.'")
    if not (callable(factory_or_class) or (isinstance(factory_or_class, str)
                                           and ":" in factory_or_class)):
        raise TypeError("register_strategy needs a Strategy subclass, a factory or a "
                        "'module:attr' string")
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind {kind!r}: one of {', '.join(KINDS)}")
    _ensure_builtins()
    _scan_plugins()
    if name in _REGISTRY and not replace:
        raise ValueError(f"a search strategy named {name!r} is already registered "
                         f"({_REGISTRY[name]['origin']}); pass replace=True to override it")
    _REGISTRY[name] = _entry(factory_or_class, kind, description)


def unregister_strategy(name: str) -> None:
    """Remove ``name`` (a built-in comes back on the next lookup)."""
    _REGISTRY.pop(name, None)


def strategy_names() -> list[str]:
    """Every registered name: built-ins, Python registrations and installed plug-ins."""
    _ensure_builtins()
    _scan_plugins()
    return sorted(_REGISTRY)


def describe_strategies() -> list[tuple[str, str, str]]:
    """(name, kind, one line) per name, without importing any strategy's module: an entry
    point not loaded yet shows as kind ``plug-in`` with its ``name = module:attr``."""
    out = []
    for name in strategy_names():
        e = _REGISTRY[name]
        t = e["target"]
        kind = e["kind"] or getattr(t, "kind", None) or "plug-in"   # (not imported to list)
        desc = e["description"] or getattr(t, "description", None) or e["origin"]
        out.append((name, kind, desc.splitlines()[0] if desc else ""))
    return out


def get_strategy(name: str):
    """A new instance of the strategy registered as ``name``; a UserError for unknown names."""
    names = strategy_names()
    if name not in _REGISTRY:
        raise UserError(f"unknown search strategy {name!r}; choose one of {', '.join(names)}")
    e = _REGISTRY[name]
    factory = _load(name, e)
    try:
        strategy = factory()
    except Exception as ex:   # a plug-in's constructor: one line naming it
        raise UserError(f"search strategy {name!r} ({e['origin']}) could not be created: "
                        f"{type(ex).__name__}: {ex}") from None
    return _checked(name, e, strategy)


def _load(name: str, e: dict) -> Callable:
    t = e["target"]
    try:
        if isinstance(t, str):
            mod, _, attr = t.partition(":")
            obj = importlib.import_module(mod)
            for part in attr.split("."):
                obj = getattr(obj, part)
            return obj
        if hasattr(t, "load") and hasattr(t, "group"):   # an entry point
            return t.load()
        return t
    except ModuleNotFoundError as ex:
        if e["origin"] == "built-in" and ex.name and e["target"].startswith(ex.name):
            raise UserError(f"search strategy {name!r} is registered but not available in this "
                            f"installation ({t} is missing)") from None
        raise UserError(f"search strategy {name!r} ({e['origin']}) cannot be loaded: "
                        f"{type(ex).__name__}: {ex}") from None
    except Exception as ex:   # ImportError, AttributeError, errors raised at import
        raise UserError(f"search strategy {name!r} ({e['origin']}) cannot be loaded: "
                        f"{type(ex).__name__}: {ex}") from None


def _checked(name: str, e: dict, strategy):
    where = f"search strategy {name!r} ({e['origin']})"
    if not callable(getattr(strategy, "search", None)):
        raise UserError(f"{where} is not a strategy: {type(strategy).__name__} has no "
                        f"search(problem) method")
    kind = getattr(strategy, "kind", None) or e["kind"]
    if kind not in KINDS:
        raise UserError(f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}")
    if not getattr(strategy, "name", None):
        try:
            strategy.name = name
        except AttributeError:
            pass
    return strategy
