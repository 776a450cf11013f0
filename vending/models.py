"""Models of the vending app."""
