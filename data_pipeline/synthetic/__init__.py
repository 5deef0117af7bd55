"""The embedded deepfake corpus, for demos and tests: `python -m data_pipeline.synthetic`.

Modules: `corpus` (the folder: plan, render, record, read back), `photos`
(the photographs and the virtual camera), `planning` (splits, pairs, seeds,
paths), `manipulations` (five fake families and their true masks) and
`media` (frame rate, mask videos and mask frames). Product code (prepare,
the reader, training, evaluation, detection) never imports this package.
The corpus's API is re-exported here.
"""

from data_pipeline.synthetic.corpus import (
                                            COMPRESSIONS,
                                            LAYOUTS,
                                            MAX_ORIGINALS,
                                            MIN_ORIGINALS,
                                            RECORD,
                                            SPLITS,
                                            CorpusConfig,
                                            CorpusError,
                                            generate,
                                            make_config,
                                            parse_frame_size,
                                            read_true_masks,
                                            true_mask_dir,
)

__all__ = ["COMPRESSIONS", "LAYOUTS", "MAX_ORIGINALS", "MIN_ORIGINALS", "RECORD", "SPLITS", "CorpusConfig",
           "CorpusError", "generate", "make_config", "parse_frame_size", "read_true_masks", "true_mask_dir"]
