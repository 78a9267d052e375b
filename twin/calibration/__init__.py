"""Calibration against what the real system reported (issue 15): CS import, observed-input
loaders, `twin calibrate` and `twin sensitivity`. See docs/calibration.md."""
