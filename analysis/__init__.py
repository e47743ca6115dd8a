"""nbdid.analysis."""
