"""Ground station: KISS TNC connection, decoding, archive, authenticated commanding, live view."""
