"""IEC 62056-21 (formerly IEC 1107) mode C: sans-IO codec, session and driver."""
