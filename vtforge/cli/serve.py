"""``vtforge serve``: a registry model behind an OpenAI-compatible endpoint (VT Code, the openai engine)."""

from __future__ import annotations

import importlib.util
import os
from typing import Any

import typer

from vtforge.cli._common import CliError, ConfigOption, config_from, err_console
from vtforge.config import Config

EXTRA_FOR = {"llama.cpp": "model", "transformers": "train", "vllm": "gpu"}


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        model: str = typer.Option(None, "--model", "-m", help="A forge.models name or a local path."),
        port: int = typer.Option(
            None, "--port", min=0, max=65535, help="Port (default: forge.serve.port; 0 = any free one)."
        ),
        host: str = typer.Option(None, "--host", help="Address to listen on (default: forge.serve.host)."),
        backend: str = typer.Option(
            "auto",
            "--backend",
            help="auto | llama.cpp | transformers | vllm (auto: vllm on a GPU with vllm, else by format).",
        ),
        config: ConfigOption = None,
    ) -> None:
        """Serve one model on /v1/chat/completions (streaming too), /v1/models and /health."""
        from vtforge.models import ModelError, hf_folder, resolve
        from vtforge.serve.launch import BACKENDS, choose_backend, vllm_argv

        cfg = config_from(config)
        host = host or cfg.forge.serve.host
        port = cfg.forge.serve.port if port is None else port
        if backend not in BACKENDS:
            raise CliError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        try:
            source = resolve(cfg, model)
            kind = choose_backend(backend, has_gguf=source.gguf is not None)
            if kind == "vllm":  # GPU: vLLM's own server takes over this process (not run on CPU machines)
                if importlib.util.find_spec("vllm") is None:
                    raise CliError("--backend vllm needs vllm on a GPU machine: pip install 'vtforge[gpu]'")
                folder = hf_folder(cfg, model)
                _announce(f"http://{host}:{port}/v1", source.name, f"vllm serve {folder}")
                argv = vllm_argv(folder, host=host, port=port, served_name=source.name)
                os.execvp(argv[0], argv)
            served, where = _load(cfg, source, model, kind)
        except ModelError as exc:
            raise CliError(str(exc)) from None
        from vtforge.serve.server import ModelServer

        try:
            server = ModelServer(served, host=host, port=port, default_max_tokens=cfg.forge.serve.max_tokens)
        except OSError as exc:
            served.close()
            raise CliError(f"--port {port}: cannot listen on {host}:{port} ({exc.strerror or exc})") from None
        _announce(server.base_url, source.name, where)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
            served.close()


def _load(cfg: Config, source: Any, model: str | None, kind: str) -> tuple[Any, str]:
    """The backend and a few words on where the weights come from."""
    from vtforge.models import hf_folder
    from vtforge.serve.backends import BackendError, EngineBackend, LlamaCppBackend

    try:
        if kind == "llama.cpp":
            if source.gguf is None:
                raise CliError(
                    f"--backend llama.cpp needs a GGUF file; {source.folder} is a Hugging Face folder"
                )
            settings = cfg.forge.serve
            served = LlamaCppBackend(
                source.gguf,
                model_id=source.name,
                context_tokens=settings.context_tokens,
                threads=settings.threads,
            )
            return served, f"llama.cpp, {source.gguf}"
        from vtforge.selfplay.engines.local_engines import TransformersEngine

        folder = hf_folder(cfg, model)
        return EngineBackend(TransformersEngine(str(folder)), model_id=source.name), f"transformers, {folder}"
    except (ImportError, BackendError) as exc:
        raise CliError(f"--backend {kind}: {exc} (pip install 'vtforge[{EXTRA_FOR[kind]}]')") from None


def _announce(base_url: str, model: str, where: str) -> None:
    """The URL first (scripts wait for it), then the VT Code config; plain text, never wrapped."""
    from vtforge.serve.launch import vtcode_snippet

    typer.echo(f"serving {model} ({where}) at {base_url}")
    typer.echo("endpoints: POST /v1/chat/completions, GET /v1/models, GET /health")
    typer.echo("")
    typer.echo(vtcode_snippet(base_url, model))
    typer.echo("")
    err_console.print("press Ctrl-C to stop", highlight=False)
