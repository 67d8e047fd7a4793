"""JSON Schema handling for records: validation, property types, narrowing."""
