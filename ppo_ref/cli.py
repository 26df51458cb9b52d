"""The command line: `ppo-ref SUBCOMMAND ...`, the same as `python -m ppo_ref SUBCOMMAND ...`.

    ppo-ref train [--env CartPole-v1] [--seed 0] [--total-steps N] [--out DIR] [--objective clip]
    ppo-ref train --resume RUN           continue an interrupted run exactly where it stopped
                  [--from-checkpoint K]  ... from the checkpoint of update K (the last is damaged)
                  [--restore-config]     ... writing a lost config.json back from a checkpoint
    ppo-ref eval RUN [--episodes 20]     re-run a saved policy deterministically

Subcommands live in COMMANDS, a dict from name to a function `main(argv) -> exit code`, or to the
string "module:function" naming one (imported only when the subcommand runs). Another module adds
its subcommand with one line here.

Errors. Every error is one line on stderr and exit status 2: a bad flag, a bad value, a file that
is missing, unreadable, damaged or not UTF-8 text, an unknown environment, memory running out (the
line says which flag to lower). An exception ppo_ref did not expect is a bug: it too is one line,
"internal error", and `PPO_REF_DEBUG=1 ppo-ref ...` shows its traceback (any error's, in fact) to
put in a report. Ctrl-C ends a command with status 130; only `train` can be continued, with
`--resume RUN`. A stdout closed early (`ppo-ref ... | head`) ends the command quietly with status 1.

A value that looks like a negative number is a value, not a flag: `--lr -1e-3` reaches the check
of lr (as `--lr=-1e-3` does), which says what is wrong with it.
"""
from __future__ import annotations

# BLAS is already pinned to one thread: importing ppo_ref.cli first runs ppo_ref/__init__.py.
import argparse
import dataclasses
import importlib
import json
import os
import re
import sys
import time
import zipfile
from pathlib import Path

COMMANDS = {
    "train": "ppo_ref.cli:train_main",
    "eval": "ppo_ref.cli:eval_main",
    "verify": "ppo_ref.spec.verify:main",
    "verify-update": "ppo_ref.spec.update:main",
    "plot": "ppo_ref.plots:main",
    "compare": "ppo_ref.compare:main",
}
SUMMARIES = {  # what `ppo-ref --help` lists
    "train": "train PPO (CartPole-v1 with defaults) into a run folder; --resume RUN continues one",
    "eval": "re-run a run folder's saved policy deterministically",
    "verify": "check your own function for a PPO quantity against ppo_ref (MODULE:FUNCTION)",
    "verify-update": "compare your replay of a whole PPO update with the expected weights",
    "plot": "learning curves (mean +- std over seeds; --ci: IQM, bootstrap bands) from run "
            "folders or sweep CSVs",
    "compare": "two groups of runs: IQM, mean, P(a better than b) with bootstrap CIs, a verdict",
}


class CLIError(Exception):
    """A user error: reported as one line on stderr, exit status 2."""


# -2, -.5, -1e-3, -inf: argparse reads an argument that starts with "-" as a flag unless it
# matches its own pattern, which has no exponent; this one does (and none of our flags looks
# like a number, so the two cannot be confused).
_NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^-inf(inity)?$", re.IGNORECASE)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (a CLIError, exit 2) and negative numbers as values."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = _NEGATIVE_NUMBER   # argparse's own attribute for this

    def error(self, message):  # argparse prints usage + message and exits 2; we want one line
        raise CLIError(message)


class OneLineParser(_Parser):
    """_Parser for a subcommand whose main() also runs on its own (`python -m
    ppo_ref.spec.verify`, a test calling plots.main): an error prints its one line and exits 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


# ----- train -------------------------------------------------------------------------------------

_SHORT = {"env_id": "env"}   # flag names that are not the field name with - for _


def _flag(name: str) -> str:
    return "--" + _SHORT.get(name, name.replace("_", "-"))


def _optional_float(text: str):
    return None if text.lower() in ("none", "off") else float(text)


def _train_parser():
    from .train.trainer import OBJECTIVES, PPOConfig, PRESETS
    choices = {"objective": OBJECTIVES, "dtype": ("float64", "float32"),
               "activation": ("tanh", "relu")}
    p = _Parser(prog="ppo-ref train", description="Train PPO. Flags override the preset (by "
                "default the preset of --env, if there is one; else the PPOConfig defaults, the "
                "ones shown below, which are CartPole-v1's).")
    p.add_argument("--preset", choices=sorted(PRESETS), help="start from this preset")
    p.add_argument("--out", help="run folder (default runs/ENV__OBJECTIVE__sSEED__TIME)")
    p.add_argument("--resume", metavar="RUN", help="continue the run in this folder from its "
                   "last checkpoint (its own config; no other config flags)")
    p.add_argument("--from-checkpoint", type=int, metavar="K", help="with --resume: continue "
                   "from the checkpoint of update K instead of the last (when the last is "
                   "damaged); later checkpoints are removed")
    p.add_argument("--restore-config", action="store_true", help="with --resume: write a "
                   "missing or unreadable config.json back from the run's checkpoints first")
    p.add_argument("--no-progress", action="store_true", help="no progress line on stderr (on "
                   "a terminal one line rewritten each update; otherwise, as in a log file, a "
                   "plain line each time another 5%% of the updates is done)")
    defaults = PPOConfig()
    for f in dataclasses.fields(PPOConfig):
        # default=None marks "not given", so the help names the PPOConfig default itself
        default = getattr(defaults, f.name)
        shown = " ".join(map(str, default)) if isinstance(default, tuple) else default
        help_ = f"{f.metadata.get('help', '')} (default: {shown})"
        kw = {"default": None, "help": help_, "dest": f.name}
        if f.type in ("bool", bool):
            p.add_argument(_flag(f.name), action=argparse.BooleanOptionalAction, **kw)
        elif f.name == "hidden":
            p.add_argument(_flag(f.name), type=int, nargs="+", metavar="H", **kw)
        elif f.name == "target_kl":
            p.add_argument(_flag(f.name), type=_optional_float, metavar="KL|none", **kw)
        elif f.name in choices:
            p.add_argument(_flag(f.name), choices=choices[f.name], **kw)
        else:
            kind = {"int": int, "float": float}.get(str(f.type), str)
            p.add_argument(_flag(f.name), type=kind, **kw)
    return p


def train_main(argv) -> int:
    """ppo-ref train: train PPO and write a run folder."""
    from .train.trainer import PPOConfig, PRESETS, train
    from .train.runs import read_config, restore_config
    args = _train_parser().parse_args(argv)
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(PPOConfig)
                 if getattr(args, f.name) is not None}
    if args.resume:
        if overrides or args.preset or args.out:
            given = [_flag(k) for k in overrides] + ["--preset"] * bool(args.preset) + \
                ["--out"] * bool(args.out)
            raise CLIError(f"--resume continues with the run's own config.json; drop {given}")
        if args.restore_config:
            print(f"ppo-ref train: wrote {restore_config(args.resume)} back from the run's "
                  f"checkpoints", file=sys.stderr)
        config = PPOConfig.from_dict(read_config(args.resume))
        out = Path(args.resume)
    else:
        if args.from_checkpoint is not None or args.restore_config:
            raise CLIError("--from-checkpoint and --restore-config go with --resume RUN")
        base = PRESETS.get(args.preset or overrides.get("env_id", "CartPole-v1"))
        config = dataclasses.replace(base, **overrides) if base else PPOConfig(**overrides)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out = Path(args.out) if args.out else \
            Path("runs") / f"{config.env_id}__{config.objective}__s{config.seed}__{stamp}"
    import gymnasium as gym
    try:
        gym.spec(config.env_id)
    except gym.error.Error as e:
        raise CLIError(f"unknown env id {config.env_id!r} ({e})") from None
    print(f"ppo-ref train: {config.env_id}, objective {config.objective}, seed {config.seed}, "
          f"{config.total_steps:,} steps -> {out}", file=sys.stderr)
    try:
        result = train(config, out_dir=out, progress=not args.no_progress,
                       resume=bool(args.resume), from_checkpoint=args.from_checkpoint)
    except KeyboardInterrupt as e:
        saved = f" ({e})" if str(e) else ""
        print(f"\nppo-ref train: interrupted{saved}; continue with: ppo-ref train --resume {out}",
              file=sys.stderr)
        return 130
    ev = result.eval
    print(f"eval over {ev['episodes']} episodes: mean return {ev['mean_return']:.2f} "
          f"+- {ev['std_return']:.2f}   (run folder: {out})")
    return 0


# ----- eval --------------------------------------------------------------------------------------

def eval_main(argv) -> int:
    """ppo-ref eval RUN: evaluate the policy saved in a run folder."""
    from .train.trainer import EVAL_SEED_OFFSET, evaluate, load_agent
    p = _Parser(prog="ppo-ref eval", description="Deterministic evaluation of a saved policy.")
    p.add_argument("run", help="run folder (written by ppo-ref train)")
    p.add_argument("--episodes", type=int, help="episodes (default: the run's eval_episodes)")
    p.add_argument("--seed", type=int, help="seed of the first episode (default: as at the end "
                   "of training)")
    p.add_argument("--json", help="also write the result to this file")
    args = p.parse_args(argv)
    if not Path(args.run).is_dir():
        raise CLIError(f"{args.run} is not a run folder")
    agent, normalizer, config = load_agent(args.run)
    episodes = config.eval_episodes if args.episodes is None else args.episodes
    seed = config.seed + EVAL_SEED_OFFSET if args.seed is None else args.seed
    ev = evaluate(agent, config.env_id, episodes, seed=seed, obs_normalizer=normalizer)
    if args.json:
        Path(args.json).write_text(json.dumps(ev, indent=2) + "\n")
    print(f"{config.env_id}: mean return {ev['mean_return']:.2f} +- {ev['std_return']:.2f} "
          f"over {episodes} episodes")
    return 0


# ----- dispatch ----------------------------------------------------------------------------------

DEBUG = "PPO_REF_DEBUG"      # set to 1: an error shows its traceback instead of one line
INTERRUPTED = {   # what Ctrl-C leaves behind, by command (the others have nothing to continue)
    "train": " (a run folder it was writing can be continued with: ppo-ref train --resume RUN)",
}
OUT_OF_MEMORY = {  # which flags to lower when memory runs out, by command
    "train": "lower --num-envs or --num-steps (each update holds num_envs * num_steps steps), "
             "or --hidden",
    "eval": "lower --episodes",
    "plot": "plot fewer runs at once",
}


def _resolve(target):
    if callable(target):
        return target
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def _usage() -> str:
    return "usage: ppo-ref {" + ",".join(COMMANDS) + "} ...  (ppo-ref COMMAND --help: its flags)"


def main(argv=None) -> int:
    try:
        try:
            return _dispatch(sys.argv[1:] if argv is None else list(argv))
        finally:
            sys.stdout.flush()    # a reader that has gone shows here, not at interpreter exit
    except BrokenPipeError:
        # stdout's reader closed early (`ppo-ref ... | head`): not an error to report. As the
        # Python docs advise (signal module, "Note on SIGPIPE"), point stdout at devnull so the
        # interpreter's final flush fails no more, and exit 1, as Python does on EPIPE.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):   # a stdout with no file descriptor
            pass
        return 1


def _dispatch(argv: list) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        if not argv:
            print(_usage(), file=sys.stderr)
            return 2
        print(_usage() + "\n\ncommands:")
        print("\n".join(f"  {name:<15}{SUMMARIES.get(name, '')}" for name in COMMANDS))
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"ppo-ref: error: unknown command {name!r}; {_usage()}", file=sys.stderr)
        return 2
    try:
        return int(_resolve(COMMANDS[name])(rest) or 0)
    except BrokenPipeError:     # stdout closed early: main ends quietly
        raise
    except KeyboardInterrupt:
        print(f"\nppo-ref {name}: interrupted{INTERRUPTED.get(name, '')}", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - every error is one line; PPO_REF_DEBUG shows the rest
        if os.environ.get(DEBUG, "") not in ("", "0"):
            raise
        print(f"ppo-ref {name}: {_error_line(e, name)}", file=sys.stderr)
        return 2


def _user_error(e: Exception) -> bool:
    """Whether e reports bad input (a flag, a file, an environment, the machine's memory)
    rather than a bug in ppo_ref."""
    gym = sys.modules.get("gymnasium.error")    # loaded if the command used gymnasium
    return isinstance(e, (CLIError, ValueError, TypeError, OSError, KeyError, EOFError, MemoryError,
                          ImportError, zipfile.BadZipFile)) or \
        (gym is not None and isinstance(e, gym.Error))


def _error_line(e: Exception, command: str) -> str:
    """The one line an exception is reported as (after "ppo-ref COMMAND: ")."""
    text = " ".join(str(e).split())      # a message that spans lines (numpy's, torch's) on one
    if isinstance(e, MemoryError):
        hint = OUT_OF_MEMORY.get(command)
        return f"error: out of memory{': ' + text if text else ''}" + (f"; {hint}" if hint else "")
    if isinstance(e, UnicodeDecodeError):
        return f"error: a file is not UTF-8 text (a binary or damaged file?): {text}"
    if not _user_error(e):
        return (f"internal error: {type(e).__name__}: {text} (a bug in ppo_ref; {DEBUG}=1 shows "
                f"the traceback to report)")
    if isinstance(e, (KeyError, EOFError)) or not text:   # KeyError('x') alone reads "'x'"
        return f"error: {type(e).__name__}: {text}".rstrip(": ")
    return f"error: {text}"


if __name__ == "__main__":
    sys.exit(main())
