"""nbdid.families."""
