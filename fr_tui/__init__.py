"""fr-tui: a terminal app for FastRouter's Batch API."""

__version__ = "0.1.0"
