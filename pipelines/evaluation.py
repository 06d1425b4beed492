"""The recurring comparison: a schedule evaluates the latest policies on the shared suite.

``evaluation_job`` runs ``vtforge evaluate --latest`` (a child process: the trainers sit above the
pipelines in the import order), which emits ``skill_evaluation`` events; the landing sensor then
starts ``warehouse_job``, which rebuilds ``skill_evaluations`` and ``leaderboard`` (its asset shows
the table as markdown) like every other table. ``recurring_evaluation`` runs the job
on ``forge.eval.schedule`` (cron); it is running by default wherever a Dagster daemon runs
(``vtforge ui``), and stopped when the lever is empty. The demo starts no daemon, so nothing
recurs there.
"""

from dagster import (
    AssetExecutionContext,
    AssetSelection,
    DefaultScheduleStatus,
    MaterializeResult,
    ScheduleDefinition,
    asset,
    define_asset_job,
)

from vtforge.config import Config
from vtforge.pipelines.resources import WarehouseResource

EVALUATION = "evaluation"
DEFAULT_CRON = "0 */6 * * *"


@asset(
    group_name=EVALUATION,
    kinds={"python"},
    description="The latest SFT and GRPO policies measured on forge.eval.default_suite (`vtforge evaluate`).",
)
def policy_evaluations(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    done = warehouse.run_cli("evaluate", "--latest")
    context.log.info(done.stdout[-4000:])
    evaluated = "nothing to evaluate" not in done.stdout
    return MaterializeResult(metadata={"evaluated": evaluated, "output": done.stdout[-2000:]})


evaluation_job = define_asset_job(
    "evaluation_job",
    selection=AssetSelection.assets(policy_evaluations),
    description="The latest policies on the shared suite (warehouse_job then rebuilds the leaderboard).",
)


def recurring_evaluation(config: Config) -> ScheduleDefinition:
    cron = config.forge.eval.schedule
    return ScheduleDefinition(
        name="recurring_evaluation",
        job=evaluation_job,
        cron_schedule=cron or DEFAULT_CRON,
        default_status=DefaultScheduleStatus.RUNNING if cron else DefaultScheduleStatus.STOPPED,
        description="forge.eval.schedule: the latest policies on the shared suite, then the leaderboard.",
    )


EVALUATION_ASSETS = [policy_evaluations]
