"""A small typed registry: the one way plugins (games, reward adapters) become known."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from .errors import DuplicateRegistrationError, HuodongError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps a name to a plugin. Registering a name twice is an error, so is asking for an unknown one."""

    def __init__(self, kind: str, missing_error: type[HuodongError]) -> None:
        self.kind = kind
        self._missing_error = missing_error
        self._items: dict[str, T] = {}

    def register(self, key: str) -> Callable[[T], T]:
        def decorator(item: T) -> T:
            self.add(key, item)
            return item

        return decorator

    def add(self, key: str, item: T) -> None:
        if key in self._items:
            raise DuplicateRegistrationError(f"{self.kind} {key!r} is already registered")
        self._items[key] = item

    def get(self, key: str) -> T:
        try:
            return self._items[key]
        except KeyError:
            raise self._missing_error(f"Unknown {self.kind} {key!r}.", name=key, known=self.keys()) from None

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def keys(self) -> list[str]:
        return sorted(self._items)
