"""The asset graph, one module per family."""
