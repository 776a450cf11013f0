"""Reading meters: protocol adapters, transports, simulators, read jobs, ingest."""
