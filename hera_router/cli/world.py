"""``hera-router world ...``: generate simulated request sets and print the calibration report.

Only typer is imported here; the simulator itself is imported inside each command so that
``hera-router --help`` stays instant.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Iterable
from pathlib import Path

import typer

world_app = typer.Typer(
    help="The simulated agent world (SIMULATED): request sets with gold answers, calibration.",
    no_args_is_help=True,
)

_FAMILY_HELP = (
    "lookup (multi-hop knowledge graph), arithmetic (word problems), mixed (alternating), graph "
    "(comparisons and aggregations over several lookups or computations) or facts (lookups whose facts "
    "and plan are written into the request, for real small models)."
)


def _fail(message: str) -> typer.Exit:
    typer.secho(message, err=True, fg=typer.colors.RED)
    return typer.Exit(code=2)


@world_app.command("generate")
def generate_command(
    out: Path = typer.Option(..., "--out", "-o", help="JSONL file to write (one request per line)."),
    family: str = typer.Option("mixed", "--family", "-f", help=_FAMILY_HELP),
    n: int = typer.Option(100, "--n", min=1, help="Number of requests."),
    seed: int = typer.Option(0, "--seed", help="World seed; the sim backends must use the same one."),
    preset: str = typer.Option("default", "--preset", help="Preset whose world shape (hops, operations) to use."),
    config: Path | None = typer.Option(None, "--config", help="Simulator config file (presets.toml shape)."),
) -> None:
    """Write N simulated requests with ids, gold answers and metrics as JSONL."""
    from hera_router.simulator.generate import generate_tasks, write_jsonl
    from hera_router.simulator.presets import PresetError, load_behaviour
    from hera_router.simulator.world import World

    try:
        behaviour = load_behaviour(preset, config)
        records = generate_tasks(World(seed, behaviour.world), family, n)
    except (PresetError, ValueError) as exc:
        raise _fail(str(exc)) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    count = write_jsonl(records, out)
    typer.echo(f"wrote {count} simulated {family} requests (world seed {seed}) to {out}")


@world_app.command("calibrate")
def calibrate_command(
    n: int = typer.Option(300, "--n", min=1, help="Number of requests to generate (ignored with --requests)."),
    seed: int = typer.Option(0, "--seed", help="World seed."),
    family: str = typer.Option("mixed", "--family", "-f", help=_FAMILY_HELP),
    preset: str = typer.Option("default", "--preset", help="Behaviour preset to calibrate."),
    config: Path | None = typer.Option(None, "--config", help="Simulator config file (presets.toml shape)."),
    requests: Path | None = typer.Option(None, "--requests", help="Use this request file instead of generating."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Also write the Markdown report here."),
    sbert: bool = typer.Option(False, "--sbert", help="Also measure S-L distance with SBERT (loads torch)."),
) -> None:
    """Run All-SLM, All-LLM, Random and an independent router; print the motivation metrics."""
    from rich.progress import Progress

    from hera_router.backends.base import ModelBackend
    from hera_router.simulator.backend import SimBackend
    from hera_router.simulator.calibration import calibrate, render_markdown, sbert_similarity
    from hera_router.simulator.generate import TaskRecord, generate_tasks, read_jsonl
    from hera_router.simulator.loop import Executor
    from hera_router.simulator.presets import PresetError, load_behaviour
    from hera_router.simulator.world import World

    try:
        behaviour = load_behaviour(preset, config)
        world = World(seed, behaviour.world)
        tasks = list(read_jsonl(requests)) if requests else generate_tasks(world, family, n)
    except (PresetError, ValueError, OSError) as exc:
        raise _fail(str(exc)) from None
    if requests and any(t.world_seed != seed for t in tasks):
        raise _fail(f"{requests} was generated for another world seed; pass --seed {tasks[0].world_seed}")
    backends: dict[Executor, ModelBackend] = {
        "slm": SimBackend("slm", "sim-slm", seed, preset, config_path=config),
        "llm": SimBackend("llm", "sim-llm", seed, preset, config_path=config),
    }
    with Progress(transient=True) as bar:

        def progress(items: Iterable[TaskRecord], label: str) -> Iterable[TaskRecord]:
            return bar.track(items, description=label, total=len(tasks))

        report = calibrate(
            tasks,
            world,
            backends,
            preset=preset,
            sbert=sbert_similarity() if sbert else None,
            progress=progress,
        )
    command = "hera-router " + " ".join(shlex.quote(arg) for arg in sys.argv[1:])
    text = render_markdown(report, command=command)
    typer.echo(text)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
