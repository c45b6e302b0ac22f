rule proxy_correlation:
    input:
        features=lambda wc: PLAN.target_shards("features", wc.space, wc.dataset),
        arch_stats=lambda wc: PLAN.target_shards("arch_stats", wc.space, wc.dataset),
        labels=lambda wc: PLAN.labels_files(wc.space, wc.dataset),
    output:
        csv=LAYOUT.pattern("proxy_table"),
        md=report(
            LAYOUT.pattern("proxy_table_md"),
            category="Zero-cost proxies",
            caption="../report/proxy_correlation.rst",
        ),
    log:
        LAYOUT.log("proxy_table"),
    benchmark:
        LAYOUT.benchmark("proxy_table")
    conda:
        "../envs/parzc.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=lambda wc, attempt: 10 * attempt,
    params:
        proxy_dataset=lambda wc: PLAN.proxy_dataset(wc.space, wc.dataset),
    script:
        "../scripts/proxy_correlation.py"


rule correlation_tables:
    input:
        PLAN.metrics_files(),
    output:
        csv=LAYOUT.pattern("correlation_csv"),
        md=report(
            LAYOUT.pattern("correlation_md"),
            category="Predictors",
            caption="../report/correlation.rst",
        ),
        ablation_csv=LAYOUT.pattern("loss_ablation_csv"),
        ablation_md=report(
            LAYOUT.pattern("loss_ablation_md"),
            category="Predictors",
            caption="../report/loss_ablation.rst",
        ),
        plot=report(
            LAYOUT.pattern("kendall_plot"),
            category="Predictors",
            caption="../report/kendall_vs_size.rst",
        ),
        by_size=report(
            LAYOUT.pattern("kendall_by_size_md"),
            category="Predictors",
            caption="../report/kendall_by_size.rst",
        ),
        protocols_csv=LAYOUT.pattern("protocols_csv"),
        protocols_md=report(
            LAYOUT.pattern("protocols_md"),
            category="Predictors",
            caption="../report/protocols.rst",
        ),
    log:
        LAYOUT.log("correlation_csv"),
    benchmark:
        LAYOUT.benchmark("correlation_csv")
    conda:
        "../envs/parzc.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: 2000 * attempt,
        runtime=lambda wc, attempt: 10 * attempt,
    params:
        # the loss ablation compares labels whose (space-overridden) params differ only by loss
        predictors=PLAN.predictors(),
        overrides={s: e["predictor_params"] for s, e in config["spaces"].items()},
        protocols=config["evaluation"]["protocols"],
    script:
        "../scripts/correlation_tables.py"


rule scatter_plot:
    input:
        rules.train_predictor.output.predictions,
    output:
        report(
            LAYOUT.pattern("scatter"),
            category="Predictors",
            subcategory="Scatter",
            caption="../report/scatter.rst",
        ),
    log:
        LAYOUT.log("scatter"),
    benchmark:
        LAYOUT.benchmark("scatter")
    conda:
        "../envs/parzc.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: 1000 * attempt,
        runtime=lambda wc, attempt: 5 * attempt,
    script:
        "../scripts/scatter_plot.py"
