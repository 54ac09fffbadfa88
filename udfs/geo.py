"""Geographic UDFs: great-circle distance and initial bearing between two points.

Coordinates are decimal degrees (WGS 84 latitude/longitude). The Earth is treated as a sphere
with the IUGG mean radius, which is within about 0.5 % of the ellipsoidal distance everywhere.

Every function is vectorized (numpy over whole Arrow batches) and NULL-safe: a row with a NULL
in any argument gives NULL.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lakesql import udf

EARTH_RADIUS_KM = 6371.0088  # IUGG mean Earth radius R1

_FOUR_DOUBLES = ["DOUBLE", "DOUBLE", "DOUBLE", "DOUBLE"]


def _radians(*columns: pa.Array | pa.ChunkedArray) -> tuple[list[np.ndarray], np.ndarray]:
    """Float64 numpy arrays in radians (NULLs as NaN), and the rows where every argument is set."""
    valid = np.ones(len(columns[0]), dtype=bool)
    out = []
    for col in columns:
        col = pc.cast(col, pa.float64())
        valid &= pc.is_valid(col).to_numpy(zero_copy_only=False)
        values = pc.fill_null(col, np.nan).to_numpy(zero_copy_only=False)
        out.append(np.radians(values))
    return out, valid


def _result(values: np.ndarray, valid: np.ndarray) -> pa.Array:
    return pa.array(values, type=pa.float64(), mask=~valid)


@udf(returns="DOUBLE", params=_FOUR_DOUBLES)
def haversine_km(lat1: pa.Array, lon1: pa.Array, lat2: pa.Array, lon2: pa.Array) -> pa.Array:
    """Great-circle distance in km between (lat1, lon1) and (lat2, lon2), in degrees."""
    (p1, l1, p2, l2), valid = _radians(lat1, lon1, lat2, lon2)
    with np.errstate(invalid="ignore"):
        h = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin((l2 - l1) / 2) ** 2
        # rounding can push h a hair outside [0, 1] for (near-)antipodal points
        distance = 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))
    return _result(distance, valid)


@udf(returns="DOUBLE", params=_FOUR_DOUBLES)
def bearing_deg(lat1: pa.Array, lon1: pa.Array, lat2: pa.Array, lon2: pa.Array) -> pa.Array:
    """Initial compass bearing in degrees [0, 360) from (lat1, lon1) towards (lat2, lon2)."""
    (p1, l1, p2, l2), valid = _radians(lat1, lon1, lat2, lon2)
    dl = l2 - l1
    y = np.sin(dl) * np.cos(p2)
    x = np.cos(p1) * np.sin(p2) - np.sin(p1) * np.cos(p2) * np.cos(dl)
    bearing = np.degrees(np.arctan2(y, x)) % 360.0
    # -0.0 % 360 and tiny negatives % 360 can round to exactly 360.0
    bearing = np.where(bearing >= 360.0, 0.0, bearing)
    return _result(bearing, valid)
