"""nbdid.data_prep."""
