rule extract_shard:
    input:
        # a user's space: the files its proxy batch is read from
        lambda wc: PLAN.input_files(wc.space, wc.dataset),
    output:
        features=LAYOUT.pattern("features"),
        arch_stats=LAYOUT.pattern("arch_stats"),
    log:
        LAYOUT.log("features"),
    benchmark:
        LAYOUT.benchmark("features")
    conda:
        "../envs/parzc.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: 2000 * attempt,
        runtime=lambda wc, attempt: 60 * attempt,
    params:
        settings=lambda wc: vars(
            PLAN.extract_settings(wc.space, wc.dataset, wc.feature_set)
        ),
        device=config["device"],
    script:
        "../scripts/extract_shard.py"
