rule search:
    input:
        unpack(
            lambda wc: PLAN.training_run(
                wc.space, wc.dataset, wc.predictor, int(wc.size), int(wc.seed)
            ).files()
        ),
        features=lambda wc: PLAN.target_shards("features", wc.space, wc.dataset),
        arch_stats=lambda wc: PLAN.target_shards("arch_stats", wc.space, wc.dataset),
        # the target's assembled matrix: the pool, without assembling the store again
        matrix=rules.assemble_matrix.output[0],
    output:
        LAYOUT.pattern("search"),
    log:
        LAYOUT.log("search"),
    benchmark:
        LAYOUT.benchmark("search")
    wildcard_constraints:
        strategy=PLAN.strategy_pattern(needs_predictor=True),
    conda:
        "../envs/parzc.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: 2000 * attempt,
        runtime=lambda wc, attempt: 30 * attempt,
    params:
        run=lambda wc: PLAN.training_run(
            wc.space, wc.dataset, wc.predictor, int(wc.size), int(wc.seed)
        ),
        search=config["search"],
        features=config["train"]["features"],
        proxy_dataset=lambda wc: PLAN.proxy_dataset(wc.space, wc.dataset),
    script:
        "../scripts/search.py"


rule search_baseline:
    input:
        features=lambda wc: PLAN.target_shards("features", wc.space, wc.dataset),
        arch_stats=lambda wc: PLAN.target_shards("arch_stats", wc.space, wc.dataset),
        matrix=rules.assemble_matrix.output[0],
    output:
        LAYOUT.pattern("search_baseline"),
    log:
        LAYOUT.log("search_baseline"),
    benchmark:
        LAYOUT.benchmark("search_baseline")
    wildcard_constraints:
        strategy=PLAN.strategy_pattern(needs_predictor=False),
    conda:
        "../envs/parzc.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: 2000 * attempt,
        runtime=lambda wc, attempt: 30 * attempt,
    params:
        run=None,
        search=config["search"],
        features=config["train"]["features"],
        proxy_dataset=lambda wc: PLAN.proxy_dataset(wc.space, wc.dataset),
    script:
        "../scripts/search.py"


rule search_report:
    input:
        PLAN.search_files(),
    output:
        csv=LAYOUT.pattern("search_csv"),
        md=report(
            LAYOUT.pattern("search_md"),
            category="Search",
            caption="../report/search.rst",
        ),
        plot=report(
            LAYOUT.pattern("search_plot"),
            category="Search",
            caption="../report/search_plot.rst",
        ),
    log:
        LAYOUT.log("search_csv"),
    benchmark:
        LAYOUT.benchmark("search_csv")
    conda:
        "../envs/parzc.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: 1000 * attempt,
        runtime=lambda wc, attempt: 5 * attempt,
    script:
        "../scripts/search_report.py"
