"""The checker: names, spaces and shapes, levels, channel families, objective fit → IR."""

from .checker import MAX_STEPS, check_model, check_module

__all__ = ["check_module", "check_model", "MAX_STEPS"]
