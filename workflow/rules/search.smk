rule search:
    input:
        unpack(
            lambda wc: PLAN.training_run(
                wc.space, wc.dataset, wc.predictor, int(wc.size), int(wc.seed)
            ).files()
        ),
        features=lambda wc: PLAN.target_shards("features", wc.space, wc.dataset),
        arch_stats=lambda wc: PLAN.target_shards("arch_stats", wc.space, wc.dataset),
    output:
        f"{RESULTS}/search/{{space}}/{{dataset}}/{{strategy}}/{{predictor}}_n{{size}}_seed{{seed}}.parquet",
    log:
        f"{RESULTS}/logs/search/{{space}}/{{dataset}}/{{strategy}}/{{predictor}}_n{{size}}_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/search/{{space}}/{{dataset}}/{{strategy}}/{{predictor}}_n{{size}}_seed{{seed}}.tsv"
    wildcard_constraints:
        strategy=PLAN.strategy_pattern(needs_predictor=True),
        size=r"\d+",
        seed=r"\d+",
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
    output:
        f"{RESULTS}/search/{{space}}/{{dataset}}/{{strategy}}/seed{{seed}}.parquet",
    log:
        f"{RESULTS}/logs/search/{{space}}/{{dataset}}/{{strategy}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/search/{{space}}/{{dataset}}/{{strategy}}/seed{{seed}}.tsv"
    wildcard_constraints:
        strategy=PLAN.strategy_pattern(needs_predictor=False),
        seed=r"\d+",
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
        csv=f"{RESULTS}/reports/search.csv",
        md=report(
            f"{RESULTS}/reports/search.md",
            category="Search",
            caption="../report/search.rst",
        ),
        plot=report(
            f"{RESULTS}/plots/search_accuracy_vs_cost.png",
            category="Search",
            caption="../report/search_plot.rst",
        ),
    log:
        f"{RESULTS}/logs/report/search.log",
    benchmark:
        f"{RESULTS}/benchmarks/report/search.tsv"
    conda:
        "../envs/parzc.yaml"
    script:
        "../scripts/search_report.py"
