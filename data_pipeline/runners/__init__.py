"""Who runs prepare's per-video work and writes the shards.

`shards`: processes on this machine; `beam`: an Apache Beam pipeline. Both
give the same shards; `data_pipeline.preparation` picks one by --runner.
"""
