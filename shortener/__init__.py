"""shortener: SMS link shortener and click tracker."""

__version__ = "0.1.0"
