"""The catalog: organisations and datasets with their JSON Schemas."""
