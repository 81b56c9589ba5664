"""Taking new files into the catalogue: datasets, the per-dataset steps, composite groups."""
