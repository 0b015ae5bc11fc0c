"""restyle.reference."""
