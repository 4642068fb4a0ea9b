"""The project's small error vocabulary (bad input, wrong state, ignored input)."""


class DataError(ValueError):
    """An input file or frame cannot be trusted: the message names where and what is accepted."""


class UnknownSeriesError(KeyError):
    """A series key that the store does not hold; carries close matches."""

    def __init__(self, key: str, close: list[str]):
        self.key = key
        self.close = close
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        super().__init__(f"unknown series '{key}'{hint}")

    def __str__(self) -> str:
        return str(self.args[0])

    def __reduce__(self):
        # Pickled whole (the service re-raises it from a worker process), not from its message.
        return type(self), (self.key, self.close)


class ScenarioError(ValueError):
    """A scenario or catalog entry that does not validate."""


class NotFittedError(RuntimeError):
    """A model was asked for output before ``fit``."""


class EncountersWarning(UserWarning):
    """Input that was accepted but ignored or adjusted."""
