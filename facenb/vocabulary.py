"""Names shared across facenb, defined once: REALY regions, AFLW2000-3D yaw bins, the seed papers' methods.

Every module that needs one of these imports it from here (the benchmark scorers, the results database, the
ledger, the plots, the notebooks' helpers).
"""
from __future__ import annotations

__all__ = ["REALY_REGIONS", "AFLW_YAW_BINS", "SEED_METHODS"]

#: The four REALY face regions, in the official order (REALY, Chai et al. ECCV 2022; ``all`` = mean of the four).
REALY_REGIONS: tuple[str, ...] = ("nose", "mouth", "forehead", "cheek")

#: AFLW2000-3D absolute-yaw bins as tables label them (degrees; ``balanced`` = mean of the three bin means).
AFLW_YAW_BINS: tuple[str, ...] = ("0-30", "30-60", "60-90")

#: The methods of the five seed papers (``seeds/*.yaml``), in the order the notebooks list them.
SEED_METHODS: tuple[str, ...] = ("MICA", "MGCNet", "FOCUS", "PSL", "PRNet")
