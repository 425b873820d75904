"""A local Xprizo simulator for tests and development: scripted outcomes and faults."""

from simulator.app import SimTransaction, create_app
from simulator.scenarios import (
    EndpointFaults,
    Scenario,
    ScenarioKind,
    scenario_from_description,
)
from simulator.server import serve

__all__ = [
    "EndpointFaults",
    "Scenario",
    "ScenarioKind",
    "SimTransaction",
    "create_app",
    "scenario_from_description",
    "serve",
]
