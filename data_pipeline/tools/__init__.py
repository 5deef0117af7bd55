"""Measurement tools beside the pipeline.

`python -m data_pipeline.tools.mask_quality` and `python -m data_pipeline.tools.reader_benchmark`.
"""
