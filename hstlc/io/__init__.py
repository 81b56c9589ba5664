"""Reading and writing HST products: detection, headers, event tables, GTIs, x1d, the lightcurve file."""
