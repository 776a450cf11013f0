"""Users, the organisation tree, roles, scoping and the activity log."""
