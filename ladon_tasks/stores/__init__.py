"""Task stores: where task records live (process memory or Redis)."""

from ladon_tasks.stores.base import TaskStore
from ladon_tasks.stores.memory import MemoryStore

__all__ = ["TaskStore", "MemoryStore"]
