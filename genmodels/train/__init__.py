"""The trainer shared by every family, its typed config, checkpoints and the CLI."""
