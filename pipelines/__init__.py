"""Entry points: the ``encounters`` command, ingest, training and retraining jobs."""
