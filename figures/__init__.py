"""nbdid.figures."""
