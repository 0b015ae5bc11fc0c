"""restyle.api."""
