"""Official encounter files → tidy monthly panel → vintaged observation store."""

from forecasting.data.readers import KNOWN_LAYOUTS, Release, read_release
from forecasting.data.store import ObservationStore

__all__ = ["KNOWN_LAYOUTS", "ObservationStore", "Release", "read_release"]
