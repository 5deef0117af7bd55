"""Measurement tools beside the pipeline: `python -m data_pipeline.tools.mask_quality` and `.reader_benchmark`."""
