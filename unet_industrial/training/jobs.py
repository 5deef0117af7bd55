"""Dispatches a validated TrainConfig to the job its exec_mode names."""

import os

from data_pipeline import files
from unet_industrial import run_files
from unet_industrial.training import benchmark, trainer


def run(config, run_dir):
    """Runs the job and returns its results dict.

    Args:
      config: a validated TrainConfig.
      run_dir: the run folder, already checked by `run_dir.check_run_dir`.
    """
    if config.exec_mode == "evaluate":
        return trainer.evaluate(config, run_dir)
    if config.is_benchmark:
        os.makedirs(run_dir, exist_ok=True)
        run_files.record_start(run_dir, config)
        result = benchmark.run(config)
        files.write_json(os.path.join(run_dir, "benchmark.json"), result)
        print(f"RESULT mode={config.exec_mode} backend={result['backend']} precision={result['precision']} "
              f"shape={'x'.join(map(str, config.input_shape))} batch={config.batch_size} "
              f"img_per_s={result['images_per_second']:.1f} step_ms={result['median_step_ms']:.2f}",
              flush=True)
        return result
    return trainer.train(config, run_dir)
