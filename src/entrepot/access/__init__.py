"""Access governance: who may see and change which dataset, and how narrowly."""
