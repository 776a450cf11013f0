"""IEC 870-5-102 (REE profile): FT1.2 link, integrated totals, clock, session with password."""
