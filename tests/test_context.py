"""DIRAC components see the run through narrow views (twin/dirac/context.py), never the World's module."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path
from typing import Protocol

import pytest

from twin.build import build_world
from twin.dirac import context

DIRAC = Path(context.__file__).parent
PROTOCOLS = [cls for _, cls in inspect.getmembers(context, inspect.isclass)
             if cls.__module__ == context.__name__ and issubclass(cls, Protocol)]  # type: ignore[arg-type]
VIEWS = [cls for cls in PROTOCOLS if cls.__name__ == "Run" or cls.__name__.endswith(("Context", "Transformations"))]
# A port: how a component sees a sibling system, and the World attribute that holds that sibling.
PORTS = {"DataManager": ["datamanager"], "Workload": ["wms"], "Requests": ["rms"], "TaskSubmitter": ["wms", "rms"],
         "TransformationAgents": ["ts"], "Operator": ["operator"]}


def members(view: type) -> set[str]:
    names: set[str] = set()
    for cls in view.__mro__:
        if cls.__module__ != view.__module__ or cls is Protocol:
            continue
        names |= set(cls.__dict__.get("__annotations__", {}))
        names |= {name for name, value in cls.__dict__.items()
                  if not name.startswith("_") and (callable(value) or isinstance(value, property))}
    return names


def test_no_dirac_module_imports_the_world():
    importers = [str(path.relative_to(DIRAC)) for path in DIRAC.rglob("*.py")
                 if re.search(r"^\s*(from twin\.world import|import twin\.world)", path.read_text(), re.M)]
    assert importers == []


@pytest.mark.parametrize("view", VIEWS, ids=lambda v: v.__name__)
def test_the_world_offers_every_view_a_dirac_component_declares(view, minimal_scenario):
    world = build_world(minimal_scenario)
    assert members(view), view
    assert [name for name in sorted(members(view)) if not hasattr(world, name)] == []


def test_each_component_uses_only_what_its_view_declares():
    """`world.<name>` in a module annotated with a view must be a member of that view."""
    checked = 0
    for path in DIRAC.rglob("*.py"):
        text = path.read_text()
        declared = re.search(r'world: "(\w+Context)"', text)
        if not declared:
            continue
        module = importlib.import_module(".".join(path.relative_to(DIRAC.parent.parent).with_suffix("").parts))
        view = getattr(context, declared.group(1), None) or getattr(module, declared.group(1))
        used = set(re.findall(r"\bworld\.(\w+)", text))
        assert used - members(view) == set(), path.name
        checked += 1
    assert checked >= 9


def test_every_protocol_is_a_view_of_the_world_or_a_port_of_a_sibling():
    assert {cls.__name__ for cls in PROTOCOLS} - {cls.__name__ for cls in VIEWS} - set(PORTS) == {"ReplicaAnswer"}


@pytest.mark.parametrize("port", sorted(PORTS))
def test_each_sibling_offers_what_its_port_declares(port, minimal_scenario):
    world = build_world(minimal_scenario)
    for attribute in PORTS[port]:
        sibling = getattr(world, attribute)
        assert members(getattr(context, port)), port
        assert [name for name in sorted(members(getattr(context, port))) if not hasattr(sibling, name)] == [], attribute


def test_the_context_module_imports_no_dirac_component_that_imports_it():
    """The ports keep twin.dirac.context out of every import circle, type-only imports included."""
    imported = set(re.findall(r"^\s*from (twin\.dirac\.[\w.]+) import", Path(context.__file__).read_text(), re.M))
    importers = {".".join(p.relative_to(DIRAC.parent.parent).with_suffix("").parts) for p in DIRAC.rglob("*.py")
                 if re.search(r"^\s*from twin\.dirac\.context import", p.read_text(), re.M)}
    assert imported and imported & importers == set()
