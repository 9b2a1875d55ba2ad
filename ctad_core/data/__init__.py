"""Data: scan I/O, dataset adapters, preprocessing, phantoms, the manifest."""
