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
KUBERNETES_NAMESPACE = "vtforge"

# --- forge.events ------------------------------------------------------------------------------
EVENT_SINK = "landing"
KAFKA_BOOTSTRAP = "127.0.0.1:9092"
TOPIC_PREFIX = "vtforge."
DEAD_LETTER_TOPIC = "vtforge.dead-letter"
FLUSH_MAX_EVENTS = 5_000
FLUSH_MAX_BYTES = 16 * 1024 * 1024
FLUSH_INTERVAL_S = 5.0
PARQUET_COMPRESSION = "zstd"

# --- forge.datasets ----------------------------------------------------------------------------
SYNTHETIC_UPSAMPLE = 4  # synthetic traces are upsampled 4x in SFT data (Kimi-Dev)

STAGES = ("agentless", "agentic", "selfplay", "rl", "eval")
SANDBOX_BACKENDS = ("local", "docker", "kubernetes")
EVENT_SINKS = ("landing", "kafka")
