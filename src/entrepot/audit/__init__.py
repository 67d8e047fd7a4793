"""The append-only audit log: every mutation, credential event and denial."""
