"""How many threads one torch process takes on this machine."""

from __future__ import annotations

import os

__all__ = ["default_threads"]


def default_threads() -> int:
    """Half the cores (at least one): torch otherwise spins OpenMP threads over every core, and
    two such processes on one machine (two local trainings, or a training beside the worker's
    validation) thrash: measured on 2 cores, two trainings at once took 13x longer each; with
    their share of the cores, 1.07x."""
    return max(1, (os.cpu_count() or 2) // 2)
