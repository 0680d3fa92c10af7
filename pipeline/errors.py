"""Every error a user, a partner's data or a concurrent reviewer can cause, in one place.

Light to import (no pyarrow, no SQL): the CLI and the DAGs name these without loading the steps.
Each message is meant to be printed as it is, on one line, naming the culprit.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A setting a user gave is unusable; the message names it."""


class MissingInput(RuntimeError):
    """A delivery the run needs is absent or incomplete (no _SUCCESS marker)."""


class ReconciliationError(RuntimeError):
    """Counts that must add up do not: something was lost or written twice."""


class RegistryError(ValueError):
    """The registry cannot be used; the message names the file, line and column."""


class ModelMismatch(RuntimeError):
    """A stored model was trained for other features or another scikit-learn version."""


class NoModel(FileNotFoundError):
    """The models directory holds no version of the named model."""


class InvalidTransition(ValueError):
    """The status change is not allowed from the item's current status."""


class StaleItem(RuntimeError):
    """Someone else changed the item since the version the caller saw."""


class UnknownItem(KeyError):
    """No item has this id."""

    def __str__(self) -> str:
        return f"unknown item {self.args[0]!r}"


class Forbidden(PermissionError):
    """The user's role may not do this (raised by the web and CLI layers, not the store)."""


# What a failed day reports as its reason on one line, without a traceback.
USER_FACING = (
    ConfigError,
    MissingInput,
    ReconciliationError,
    RegistryError,
    ModelMismatch,
    NoModel,
)
