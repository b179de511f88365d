"""The `hermes` command line. Subcommands live in their own modules and are imported lazily,
so `hermes --help` never loads LiteLLM or a platform library."""

from __future__ import annotations

import importlib
import sys

import click

# name -> (module, attribute, one-line help). The help is here so `--help` imports nothing.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "chat": ("gateway.cli.chat", "chat", "Talk to the agent in the terminal (or answer once with -q)."),
    "config": ("gateway.cli.config_cmd", "config", "Check the configuration file."),
    "doctor": ("gateway.cli.doctor", "doctor", "Check the home, config, model and platform credentials."),
    "eval": ("gateway.cli.eval_cmd", "eval_group", "Measure the learning on your own tasks and model (on vs off)."),
    "gateway": ("gateway.cli.gateway_cmd", "gateway", "Run the gateway: platforms, web chat and API, until SIGTERM."),
    "rl": ("gateway.cli.rl_cmd", "rl_group", "Atropos RL rollouts of the agent on tasks.jsonl (the [rl] extra)."),
    "pairing": ("gateway.cli.pairing_cmd", "pairing", "List, approve or revoke users who asked for access."),
    "batch": ("gateway.cli.batch_cmd", "batch", "Generate trajectories for a JSONL file of prompts, resumably."),
    "trajectories": ("gateway.cli.trajectories_cmd", "trajectories", "Export or compress batch trajectories."),
    "backup": ("gateway.cli.backup_cmd", "backup", "Back up the home (database, config, skills) or restore it."),
    "cron": ("gateway.cli.cron_cmd", "cron", "Scheduled jobs: add, list, pause, resume, remove, run, runs."),
    "skills": ("gateway.cli.skills_cmd", "skills", "Manage the skill library: list, show, validate, history, revert."),
    "profile": ("gateway.cli.profile_cmd", "profile", "Export or import skills, memory, cron jobs and config (no secrets)."),
    "memory": ("gateway.cli.memory_cmd", "memory", "Show what the agent remembers (MEMORY.md, USER.md)."),
    "mcp": ("gateway.cli.mcp_cmd", "mcp", "MCP servers: list them, their state and their tools."),
    "learning": ("gateway.cli.learning_cmd", "learning", "What the agent learned: checkpoint log, pending skill proposals."),
    "setup": ("gateway.cli.setup_cmd", "setup", "First run: choose and test a model, connect a platform, log in."),
    "status": ("gateway.cli.status_cmd", "status", "The processes sharing this store, the leader, who runs each duty."),
    "store": ("gateway.cli.store_cmd", "store", "The state store: status, migrate, copy to PostgreSQL (verified)."),
    "whoami": ("gateway.cli.whoami_cmd", "whoami", "Your user id in `hermes chat` (cli:local) and its USER.md."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported only when one is run."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module_name, attribute, _ = entry
        return getattr(importlib.import_module(module_name), attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hermes-gateway", prog_name="hermes")
def cli() -> None:
    """Hermes: a self-hosted agent that learns skills from its work.

    Home: $HERMES_HOME (default ~/.hermes). Configuration: $HERMES_HOME/config.toml.
    """


def main() -> None:
    try:
        cli.main(prog_name="hermes")
    except KeyboardInterrupt:
        sys.exit(130)
