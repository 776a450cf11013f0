"""Simulated Modbus meters (TCP and RTU framing) answering from the shared value model."""
