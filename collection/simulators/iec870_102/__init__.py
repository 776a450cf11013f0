"""A deterministic IEC 870-5-102 meter over TCP (loopback), on the shared value model."""
