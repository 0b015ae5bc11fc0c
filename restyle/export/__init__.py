"""restyle.export."""
