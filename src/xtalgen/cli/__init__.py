"""The ``xtalgen`` command line, thin over the public API. Nothing in the library imports it."""
