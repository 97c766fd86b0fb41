"""The store layer: everything that knows Redis."""
