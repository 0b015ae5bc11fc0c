"""restyle.train."""
