"""restyle.runtime."""
