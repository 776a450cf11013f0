"""Models of the loadcontrol app."""
