"""A deterministic IEC 62056-21 mode C meter over TCP (loopback), on the shared value model."""
