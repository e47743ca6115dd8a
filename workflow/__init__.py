"""nbdid.workflow."""
