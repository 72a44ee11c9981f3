"""The package version, in one place: the root package and the runtime record both read it."""

__version__ = "0.1.0.dev0"
