"""Pictures of lightcurves: the quicklook PNG."""
