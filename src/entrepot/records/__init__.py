"""Records: CRUD with versions and preconditions, lists, bulk import and export."""
