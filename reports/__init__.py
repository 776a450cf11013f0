"""Report definitions, the engine, exporters and scheduled delivery."""
