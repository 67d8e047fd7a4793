"""Record conditions (list filters, grant row filters) and the SQL they compile to."""
