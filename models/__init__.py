"""nbdid.models."""
