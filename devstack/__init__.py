"""The embedded local stack: dev server, simulator, webhook receiver, worker."""

from devstack.stack import LocalStack, StackPorts, free_port

__all__ = ["LocalStack", "StackPorts", "free_port"]
