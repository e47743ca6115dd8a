"""nbdid.download."""
