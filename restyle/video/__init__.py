"""restyle.video."""
