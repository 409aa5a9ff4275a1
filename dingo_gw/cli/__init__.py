"""Console scripts: one thin module per command (parse arguments, call the library, print)."""
