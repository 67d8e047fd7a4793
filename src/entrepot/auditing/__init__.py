"""Writing the audit log: rows that commit with the change they record, and denials.

Reading it (the API, the export) is `entrepot.audit`.
"""
