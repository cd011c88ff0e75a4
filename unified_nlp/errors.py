"""One error hierarchy: everything the library raises on purpose is a UnifiedNLPError."""

from __future__ import annotations


class UnifiedNLPError(Exception):
    """Base of every error that unified_nlp raises on purpose."""


class UnknownBackendError(UnifiedNLPError, KeyError):
    """A backend name that is neither a known backend nor an alias."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class BackendNotInstalledError(UnifiedNLPError, ImportError):
    """A known backend whose framework or adapter is not installed here."""


class ModelNotFoundError(UnifiedNLPError, FileNotFoundError):
    """A model name or path that cannot be found locally (there is no download)."""


class InvalidModelError(UnifiedNLPError, ValueError):
    """A model folder that exists but is incomplete, corrupt or unsafe."""


class InvalidInputError(UnifiedNLPError, ValueError):
    """Text input that cannot be classified; the message names the offending index."""


class InvalidInputTypeError(InvalidInputError, TypeError):
    """Text input of the wrong type (None, bytes, a single str where a list is expected)."""


class NotWritableError(UnifiedNLPError, OSError):
    """A model, conversion or store folder that cannot be written (read-only, a path
    under a file, a full disk); nothing partial is left behind."""


class NotSupportedError(UnifiedNLPError, NotImplementedError):
    """A capability that this backend or model does not offer (fit on an inference-only
    backend, a conversion its format has no way back from)."""


class ConversionError(UnifiedNLPError, RuntimeError):
    """A conversion between stacks that failed; no partial output is left behind."""


class WorkerError(UnifiedNLPError, RuntimeError):
    """A backend worker process that died, hung or could not start."""


class ParityError(UnifiedNLPError, AssertionError):
    """Raised by ParityReport.raise_for_failure() when two backends disagree."""


def error_class(name: str) -> type[UnifiedNLPError] | None:
    """The class of this hierarchy called `name`, or None: for an error that crossed a
    process boundary by name (a backend worker's).

    Examples:
        >>> error_class("InvalidInputError") is InvalidInputError
        True
    """
    found = globals().get(name)
    return found if isinstance(found, type) and issubclass(found, UnifiedNLPError) else None
