"""The tf.data reader: TFRecord shards of (face crop, fake-pixel mask) to model batches.

Modules: `datasets` (file patterns, parsing, balancing, augmentation, the
training and prediction datasets, shard checks), `pseudo_fakes`
(self-blended fakes made on the fly) and `image_ops` (what both share).
The datasets' API is re-exported here.
"""

from data_pipeline.reader.datasets import (
                                           AUGMENTATIONS,
                                           RecordError,
                                           augment,
                                           decode_crop,
                                           decode_record,
                                           list_files,
                                           make_dataset,
                                           make_prediction_dataset,
                                           naming_bad_shards,
                                           shard_problem,
                                           share_examples_among_workers,
                                           without_autotuning,
)

__all__ = ["AUGMENTATIONS", "RecordError", "augment", "decode_crop", "decode_record", "list_files",
           "make_dataset", "make_prediction_dataset", "naming_bad_shards", "shard_problem",
           "share_examples_among_workers", "without_autotuning"]
