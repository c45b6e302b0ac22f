from snakemake.utils import validate

from parzc import config as parzc_config
from parzc.dag import Plan
from parzc.layout import wildcard_constraints as fixed_forms

validate(config, schema="../schemas/config.schema.yaml")
parzc_config.check_names(config)  # no torch: parsing stays fast
PLAN = Plan(config)
LAYOUT = PLAN.layout
for reason in PLAN.skipped_outputs():
    logger.info(f"parzc: {reason}")


onstart:
    # predictor models and parameters (imports torch): before any job runs, not on a dry run
    parzc_config.check_predictors(config)


wildcard_constraints:
    **fixed_forms(),
    space=r"[a-z0-9_]+",
    dataset=r"[a-z0-9_-]+",
    feature_set=r"[a-z0-9_]+",
    predictor=r"[a-z0-9_]+",
    draw=r"[a-z_]+",


# -- the ask / tell loop's rounds (workflow/rules/loop.smk) -----------------------------------


def previous_round(wc):
    """Round r waits for round r-1's proposals and their trainings."""
    r = int(wc.round)
    if r == 1:
        return []
    proposals = checkpoints.loop_round.get(
        space=wc.space, dataset=wc.dataset, round=str(r - 1)
    ).output[0]
    return [proposals] + PLAN.loop_trainings(proposals)


def last_round(wc):
    proposals = checkpoints.loop_round.get(
        space=wc.space, dataset=wc.dataset, round=str(config["loop"]["rounds"])
    ).output[0]
    return [proposals] + PLAN.loop_trainings(proposals)
