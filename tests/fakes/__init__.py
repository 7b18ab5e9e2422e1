"""Test fakes. Only one is allowed in the project: Microsoft Graph (see graph_fake.py)."""

from tests.fakes.graph_fake import Faults, GraphFake, RequestRecord

__all__ = ["Faults", "GraphFake", "RequestRecord"]
