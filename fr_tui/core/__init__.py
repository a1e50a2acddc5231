"""Plain-Python core of fr-tui. Nothing in this package may import Textual."""
