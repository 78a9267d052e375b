"""The report's time series: curves on a common grid of `BINS` bins, times in days.

Shared by the log digest (which bins the event log once) and the figures (which draw the curves),
so that neither imports the other for them.
"""

from __future__ import annotations

import numpy as np

DAY = 86400.0
#: Bins of the time grid every curve of a report is drawn on.
BINS = 400
#: label -> (x in days, y), all on one grid.
Curves = dict[str, tuple[np.ndarray, np.ndarray]]
