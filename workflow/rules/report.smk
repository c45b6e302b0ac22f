rule proxy_correlation:
    input:
        features=lambda wc: PLAN.target_shards("features", wc.space, wc.dataset),
        arch_stats=lambda wc: PLAN.target_shards("arch_stats", wc.space, wc.dataset),
    output:
        csv=f"{RESULTS}/tables/proxy_correlation/{{space}}_{{dataset}}.csv",
        md=report(
            f"{RESULTS}/tables/proxy_correlation/{{space}}_{{dataset}}.md",
            category="Zero-cost proxies",
            caption="../report/proxy_correlation.rst",
        ),
    params:
        proxy_dataset=lambda wc: PLAN.proxy_dataset(wc.space, wc.dataset),
    log:
        f"{RESULTS}/logs/proxy_correlation/{{space}}_{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/proxy_correlation/{{space}}_{{dataset}}.tsv"
    conda:
        "../envs/parzc.yaml"
    script:
        "../scripts/proxy_correlation.py"


rule correlation_tables:
    input:
        PLAN.metrics_files(),
    output:
        csv=f"{RESULTS}/tables/correlation.csv",
        md=report(
            f"{RESULTS}/tables/correlation.md",
            category="Predictors",
            caption="../report/correlation.rst",
        ),
        ablation_csv=f"{RESULTS}/tables/loss_ablation.csv",
        ablation_md=report(
            f"{RESULTS}/tables/loss_ablation.md",
            category="Predictors",
            caption="../report/loss_ablation.rst",
        ),
        plot=report(
            f"{RESULTS}/plots/kendall_vs_train_size.png",
            category="Predictors",
            caption="../report/kendall_vs_size.rst",
        ),
    log:
        f"{RESULTS}/logs/report/correlation_tables.log",
    benchmark:
        f"{RESULTS}/benchmarks/report/correlation_tables.tsv"
    conda:
        "../envs/parzc.yaml"
    params:
        # the loss ablation compares labels whose (space-overridden) params differ only by loss
        predictors=PLAN.predictors(),
        overrides={s: e["predictor_params"] for s, e in config["spaces"].items()},
    script:
        "../scripts/correlation_tables.py"


rule scatter_plot:
    input:
        f"{RESULTS}/predictions/space={{space}}/dataset={{dataset}}/predictor={{predictor}}/n{{size}}_seed{{seed}}.parquet",
    output:
        report(
            f"{RESULTS}/plots/scatter/{{space}}/{{dataset}}/{{predictor}}_n{{size}}_seed{{seed}}.png",
            category="Predictors",
            subcategory="Scatter",
            caption="../report/scatter.rst",
        ),
    log:
        f"{RESULTS}/logs/report/scatter/{{space}}/{{dataset}}/{{predictor}}_n{{size}}_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/report/scatter/{{space}}/{{dataset}}/{{predictor}}_n{{size}}_seed{{seed}}.tsv"
    conda:
        "../envs/parzc.yaml"
    script:
        "../scripts/scatter_plot.py"
