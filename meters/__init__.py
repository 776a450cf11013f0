"""The grid model, meters, concentrators, meter models, customers and the measurement store."""
