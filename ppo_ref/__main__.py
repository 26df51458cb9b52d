"""`python -m ppo_ref SUBCOMMAND ...`: the same as the `ppo-ref` command (see cli.py)."""
import sys

from ppo_ref.cli import main

sys.exit(main())
