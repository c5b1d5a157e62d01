"""Users, organizations, authentication and roles."""
