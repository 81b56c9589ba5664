"""Finding and fetching new COS and STIS TIME-TAG data in MAST.

The download step upstream of the pipeline: it asks MAST which exposures exist, leaves
aside what hstlc already has, fetches the rest safely and places each complete, verified
dataset in ``ingest/``.  It never calls the ingest itself: the download flow runs before
the pipeline flow (``docs/ARCHITECTURE.md``).

Modules
-------
* :mod:`~hstlc.mast.query` -- the selection (the 2016 rules), as the query sent to MAST and
  as a pure function of the rows it returns; the records ``Dataset`` and ``Product``.
* :mod:`~hstlc.mast.client` -- the connection (base URL, token, timeouts, retry policy) and
  the astroquery calls: the HST mission search and the product lists.
* :mod:`~hstlc.mast.plan` -- what is new: the catalogue (``metadata``, ``bad_data``) and the
  folders (``ingest/``, ``filesystem/``) decide what is not fetched again.
* :mod:`~hstlc.mast.fetch` -- the safe transfer: a temporary name in ``download/``, HTTP Range
  resume, size and checksum checks, retries with backoff, bounded concurrency, progress;
  then the delivery of each complete dataset into ``ingest/``.
* :mod:`~hstlc.mast.manifest` -- the record of a run: a JSON manifest in ``download/`` and
  a ``download`` row per file in the catalogue.
* :mod:`~hstlc.mast.run` -- a run's steps as the download flow's tasks call them
  (:class:`~hstlc.mast.run.DownloadConfig`, plan, fetch and record, finish), and the whole
  run without Prefect (:func:`~hstlc.mast.run.download_now`).
"""
