# The ask / tell loop (config `loop:`): round r proposes a batch from the labels told after
# round r-1's trainings; every proposal is trained by the user's `train_command` as its own job.


rule loop_features:
    input:
        features=lambda wc: PLAN.target_shards("features", wc.space, wc.dataset),
        arch_stats=lambda wc: PLAN.target_shards("arch_stats", wc.space, wc.dataset),
    output:
        LAYOUT.pattern("loop_features"),
    log:
        LAYOUT.log("loop_features"),
    benchmark:
        LAYOUT.benchmark("loop_features")
    conda:
        "../envs/parzc.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=lambda wc, attempt: 10 * attempt,
    params:
        proxy_dataset=lambda wc: PLAN.proxy_dataset(wc.space, wc.dataset),
        features=config["train"]["features"],
    script:
        "../scripts/assemble_matrix.py"


checkpoint loop_round:
    input:
        features=rules.loop_features.output[0],
        previous=previous_round,
    output:
        LAYOUT.pattern("loop_proposals"),
    log:
        LAYOUT.log("loop_proposals"),
    benchmark:
        LAYOUT.benchmark("loop_proposals")
    conda:
        "../envs/parzc.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=lambda wc, attempt: 30 * attempt,
    params:
        device=config["device"],
    script:
        "../scripts/loop_round.py"


rule loop_train:
    output:
        LAYOUT.pattern("loop_training"),
    log:
        LAYOUT.log("loop_training"),
    benchmark:
        LAYOUT.benchmark("loop_training")
    conda:
        "../envs/parzc.yaml"
    threads: 1
    resources:
        **config.get("loop", {}).get("resources", {}),
    params:
        # a function: Snakemake would expand the command's {arch} / {seed} / {result} itself
        command=lambda wc: config["loop"]["train_command"],
    script:
        "../scripts/loop_train.py"


rule loop_summary:
    input:
        rounds=last_round,
        features=rules.loop_features.output[0],
    output:
        report(
            LAYOUT.pattern("loop_summary"),
            category="Ask / tell loop",
            caption="../report/loop_summary.rst",
        ),
    log:
        LAYOUT.log("loop_summary"),
    benchmark:
        LAYOUT.benchmark("loop_summary")
    conda:
        "../envs/parzc.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: 1000 * attempt,
        runtime=lambda wc, attempt: 5 * attempt,
    params:
        # read from the config by the script; named here so that a change redoes the summary
        constraints=lambda wc: config["spaces"][wc.space].get("constraints", {}),
    script:
        "../scripts/loop_summary.py"
