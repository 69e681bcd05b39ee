"""The trainer shared by every family, its typed config, checkpoints and the CLI; data-parallel
runs under torchrun (``dist``) and the table of a Hydra sweep's results (``sweep``)."""
