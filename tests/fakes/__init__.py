"""Test fakes. Only one is allowed in the project: Microsoft Graph (see graph_fake.py)."""

from tests.fakes.graph_clock import FakeClock
from tests.fakes.graph_fake import Faults, GraphFake, RequestRecord
from tests.fakes.graph_store import Behaviour

__all__ = ["Behaviour", "FakeClock", "Faults", "GraphFake", "RequestRecord"]
