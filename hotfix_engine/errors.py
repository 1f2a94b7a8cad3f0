"""The engine's small error hierarchy.

Every failure a user can cause or fix (a bad model spec, a corrupt adapter, a malformed pair file)
raises a subclass of :class:`HotfixError` whose message is one readable line that says what to do.
The CLI prints that line and exits non-zero; the server logs it and keeps serving.
"""


class HotfixError(Exception):
    """Base class: a problem the user can understand and act on."""


class ConfigError(HotfixError, ValueError):
    """An option or configuration value is invalid."""


class ModelError(HotfixError):
    """The model could not be found, downloaded, converted or loaded."""


class AdapterError(HotfixError):
    """An adapter folder is missing, corrupt or does not fit the base model."""


class DataError(HotfixError, ValueError):
    """A data file (pairs, problems) is missing or malformed."""


class StoreError(HotfixError):
    """The feedback store cannot be opened, read or written."""


class TrainingError(HotfixError):
    """Training could not run or did not produce a usable adapter."""


class EvaluationError(HotfixError):
    """An evaluation could not run."""


class Cancelled(HotfixError):
    """Work was cancelled on request (a newer request, `$/cancelRequest`, shutdown).

    ``steps_after_cancel`` counts the decoding steps that still ran after the request to stop.
    """

    def __init__(self, message: str = "cancelled", steps_after_cancel: int = 0) -> None:
        super().__init__(message)
        self.steps_after_cancel = steps_after_cancel
