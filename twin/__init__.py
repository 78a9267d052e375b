"""twin: a discrete-event digital twin of the CTAO DIRAC/CTADIRAC production system."""

__version__ = "0.1.0"
