"""The library of `python -m unet_industrial.train`.

Modules: `jobs` (dispatches a TrainConfig by exec_mode), `trainer` (the
reference recipe in Keras fit, checkpoints, evaluation), `data` (where
batches come from), `distribute` (one device, local GPUs, several machines),
`summaries` (TensorBoard) and `benchmark` (images per second).
"""
