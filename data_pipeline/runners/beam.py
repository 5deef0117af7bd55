"""`prepare --runner=beam`: the per-video work and the shard writing as an Apache Beam pipeline.

The pipeline runs the local runner's functions, not copies of them:

    videos -> shards.run_worker (unless an earlier run finished the video)
           -> all results -> shards.plan_shards -> shards.write_shard, one shard per element

so its shards are byte for byte those of `--runner=local`. Workers talk
through the output folder as the local processes do: each video's records
and result JSON go to `<out_dir>/.work/`, shards to `<out_dir>/`; the input
videos and --out_dir must therefore be on storage that every worker and the
launching machine see, at the same path. Resuming is the local runner's too:
a video whose result JSON exists is not processed again.

Only `pipeline.prepare` imports this module, and only for --runner=beam, so
Beam stays an optional dependency (requirements-beam.txt).
"""

import functools
import os

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners import create_runner

from data_pipeline.config import PrepareError
from data_pipeline.runners import shards


def pipeline_options(beam_runner, options):
    """Beam's PipelineOptions for a runner name and pass-through pipeline options.

    Args:
      beam_runner: a Beam runner name (DirectRunner, DataflowRunner, ...) or
        the qualified name of a PipelineRunner class.
      options: Beam pipeline options as command-line strings, e.g.
        ("--direct_num_workers=2", "--direct_running_mode=multi_processing").

    Raises:
      PrepareError: for a runner Beam does not know (before any video is read).
    """
    try:
        create_runner(beam_runner)
    except (ValueError, ImportError) as error:
        raise PrepareError(f"--beam_runner={beam_runner!r}: {error}") from error
    return PipelineOptions([f"--runner={beam_runner}", *options])


def _finished_or_run(item, worker, worker_args, work_dir):
    """A video's result: the stored one of an earlier run, else shards.run_worker's."""
    return (shards.read_result(work_dir, item.video_id)
            or shards.run_worker(item, worker, worker_args, work_dir))


def _shards_to_write(results, examples_per_shard):
    """(shard name, video ids) for every shard of every split of plan_shards' plan."""
    for split_shards in shards.plan_shards(results, examples_per_shard).values():
        yield from split_shards


def run(items, worker, worker_args, out_dir, examples_per_shard, options):
    """Processes the videos and writes the shards on a Beam runner.

    Args:
      items: the layouts.VideoItem of every video of the run.
      worker: `worker(item, write, *worker_args) -> result dict` (see
        shards.run_worker); a module-level function, as workers in other
        processes or machines unpickle it by reference.
      worker_args: its further arguments (picklable).
      out_dir: the output folder, on storage every worker sees.
      examples_per_shard: target examples per shard.
      options: from `pipeline_options`.

    Returns:
      (the result dict of every item, in items' order; {split: [shard file names]}).

    Raises:
      PrepareError: when the workers' results are not in this machine's
        view of out_dir (out_dir is not on shared storage).
    """
    work_dir = os.path.join(out_dir, shards.WORK_DIR)
    with beam.Pipeline(options=options) as pipeline:
        _ = (pipeline
             # Create reshuffles its elements, so the videos are spread over the workers.
             | "Videos" >> beam.Create(items)
             | "Process" >> beam.Map(_finished_or_run, worker, worker_args, work_dir)
             # The plan needs every result: how many shards a split gets depends on its total.
             | "AllResults" >> beam.combiners.ToList()
             | "Plan" >> beam.FlatMap(_shards_to_write, examples_per_shard)
             # The plan comes out of one element; without this, one worker would write every shard.
             | "SpreadShards" >> beam.Reshuffle()
             | "WriteShards" >> beam.MapTuple(functools.partial(shards.write_shard, out_dir)))
    results = [shards.read_result(work_dir, item.video_id) for item in items]
    missing = sum(result is None for result in results)
    if missing:
        raise PrepareError(f"the Beam workers' results of {missing} videos are not in {work_dir}: --out_dir "
                           "must be on storage that every worker and this machine share")
    return results, shards.shard_names(shards.plan_shards(results, examples_per_shard))
