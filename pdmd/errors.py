"""Exceptions that carry what went wrong and where, for users and for FireWorks' stored_data."""

from __future__ import annotations


class PdmdError(Exception):
    """Base class of every error pdmd raises on purpose."""


class InputError(PdmdError, ValueError):
    """A parameter, structure or file is invalid; the message names the field and the fix."""


class MeltQuenchError(PdmdError, RuntimeError):
    """LAMMPS failed or produced unphysical output; the message carries LAMMPS' own reason."""


class SimulationError(PdmdError, RuntimeError):
    """MD with a model or a reference potential failed (e.g. it blew up); what ran is kept on disk."""


class ExtrapolationStop(SimulationError):
    """MD left a model's training domain (an uncertainty threshold was passed); the frames so far are kept."""

    def __init__(self, message: str, step: int = 0, value: float = 0.0) -> None:
        super().__init__(message)
        self.step, self.value = step, value


class DescriptorError(PdmdError, RuntimeError):
    """A persistence diagram could not be computed for one structure."""


class StoreBusyError(PdmdError, RuntimeError):
    """The embedded (mongomock) store is held by another process."""
