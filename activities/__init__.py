"""Temporal activities: the I/O of a training. Each is idempotent and safe to retry.

Every activity takes one input dataclass and returns one typed result (``loraflow.contracts``);
its registered name (``@activity.defn(name=...)``) is what the Web UI shows and never changes.
Workflows call them by reference (``workflow.execute_activity_method(PodActivities.create_pod,
...)``), so these modules import nothing heavy at module level (torch, diffusers and PIL are
imported inside the methods that use them). The worker's wiring (``worker.py``) builds the
classes with their dependencies.

- ``pods``: create-pod, wait-ready, upload-images, run-training, poll, download, cleanup
- ``library``: prepare-dataset, store, validate, record the outcome
- ``replicate``: the Replicate fallback (start, poll, download, cancel)
- ``records``: the LoRA's status as the workflow moves
- ``jobs``: the video-job side (a job's LoRAs, their references, their status)
- ``mail``: the creator's e-mail when a LoRA ends (``CreatorEmailWorkflow``'s one activity)
- ``notify``, ``apply``, ``sweeper``, ``maintenance``: webhook, clip planning, housekeeping
"""
