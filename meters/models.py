"""Models of the meters app."""
