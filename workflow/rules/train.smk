rule make_split:
    output:
        LAYOUT.pattern("split"),
    log:
        LAYOUT.log("split"),
    benchmark:
        LAYOUT.benchmark("split")
    conda:
        "../envs/parzc.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: 1000 * attempt,
        runtime=lambda wc, attempt: 5 * attempt,
    params:
        pool=lambda wc: PLAN.pool(wc.space, wc.dataset),
    script:
        "../scripts/make_split.py"


use rule make_split as make_drawn_split with:
    output:
        LAYOUT.pattern("split_drawn"),
    log:
        LAYOUT.log("split_drawn"),
    benchmark:
        LAYOUT.benchmark("split_drawn")


rule assemble_matrix:
    input:
        features=lambda wc: PLAN.target_shards("features", wc.space, wc.dataset),
        arch_stats=lambda wc: PLAN.target_shards("arch_stats", wc.space, wc.dataset),
        # a user's space: new label rows re-assemble (and so refit), never re-extract
        labels=lambda wc: PLAN.labels_files(wc.space, wc.dataset),
    output:
        LAYOUT.pattern("matrix"),
    log:
        LAYOUT.log("matrix"),
    benchmark:
        LAYOUT.benchmark("matrix")
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


rule train_predictor:
    input:
        split=lambda wc: PLAN.training_run(
            wc.space, wc.dataset, wc.predictor, int(wc.size), int(wc.seed)
        ).split,
        matrix=rules.assemble_matrix.output[0],
    output:
        predictions=LAYOUT.pattern("predictions"),
        model=LAYOUT.pattern("model"),
    log:
        LAYOUT.log("predictions"),
    benchmark:
        LAYOUT.benchmark("predictions")
    conda:
        "../envs/parzc.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=lambda wc, attempt: 120 * attempt,
    params:
        model=lambda wc: PLAN.predictors()[wc.predictor]["model"],
        predictor_params=lambda wc: PLAN.predictor_params(wc.space, wc.predictor),
        device=config["device"],
        train_label=lambda wc: PLAN.predictors()[wc.predictor]["train_label"],
    script:
        "../scripts/train_predictor.py"


rule evaluate:
    input:
        rules.train_predictor.output.predictions,
    output:
        LAYOUT.pattern("metrics"),
    log:
        LAYOUT.log("metrics"),
    benchmark:
        LAYOUT.benchmark("metrics")
    conda:
        "../envs/parzc.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: 1000 * attempt,
        runtime=lambda wc, attempt: 5 * attempt,
    params:
        protocols=config["evaluation"]["protocols"],
    script:
        "../scripts/evaluate.py"
