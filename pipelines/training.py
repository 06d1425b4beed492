"""Training in Dagster: GRPO as an asset that waits on a blocking check over the promotion.

``grpo_job`` rebuilds ``policy_promotions`` and then ``grpo_policy``. The blocking check
``grpo_start_promoted`` (``vtforge.warehouse.promotions.start_policy_promoted``) fails when GRPO's start,
the newest SFT policy, has no current ``promoted`` decision, and Dagster then skips ``grpo_policy``:
the job never trains from a policy the gates rejected. The trainer runs as ``python -m vtforge
train grpo`` in a child process (its own memory, and the trainers stay above the pipelines in
the import order); it re-checks the promotion itself.
"""

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetSelection,
    Config,
    MaterializeResult,
    asset,
    asset_check,
    define_asset_job,
)

from vtforge.pipelines.resources import WRITER_POOL, WarehouseResource
from vtforge.warehouse.promotions import start_policy_promoted

TRAINING = "training"


@asset_check(
    asset="policy_promotions",
    blocking=True,
    pool=WRITER_POOL,
    description=start_policy_promoted.__doc__,
)
def grpo_start_promoted(warehouse: WarehouseResource) -> AssetCheckResult:
    with warehouse.connect() as (con, _):
        outcome = start_policy_promoted(con)
    return AssetCheckResult(
        passed=outcome.passed,
        severity=AssetCheckSeverity.ERROR,
        description=outcome.description,
        metadata=outcome.metadata,
    )


class GrpoRunConfig(Config):
    """Launchpad levers of one GRPO run (the rest come from vtcode.toml)."""

    max_steps: int = 10
    reward: str = "sandbox"


@asset(
    group_name=TRAINING,
    deps=["policy_promotions", "rl_prompts"],
    kinds={"python"},
    description="A GRPO policy trained from the newest promoted SFT policy (`vtforge train grpo`).",
)
def grpo_policy(
    context: AssetExecutionContext, config: GrpoRunConfig, warehouse: WarehouseResource
) -> MaterializeResult:
    done = warehouse.run_cli("train", "grpo", "--max-steps", str(config.max_steps), "--reward", config.reward)
    context.log.info(done.stdout[-4000:])
    return MaterializeResult(metadata={"output": done.stdout[-2000:]})


grpo_job = define_asset_job(
    "grpo_job",
    selection=AssetSelection.assets("policy_promotions", "grpo_policy"),
    description="Rebuild the promotions, then GRPO from the promoted SFT policy (blocked otherwise).",
)

TRAINING_ASSETS = [grpo_policy]
TRAINING_CHECKS = [grpo_start_promoted]
