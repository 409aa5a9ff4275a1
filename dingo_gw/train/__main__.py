"""``python -m dingo_gw.train config.yaml`` — the dingo_train command, as a module, so that
``torchrun --nproc_per_node N -m dingo_gw.train config.yaml`` runs distributed training.

This is an entry point (like a console script), not a library module.
"""

from dingo_gw.cli.train import main

if __name__ == "__main__":
    main()
