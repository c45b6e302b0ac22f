rule make_split:
    output:
        f"{RESULTS}/splits/{{space}}/{{dataset}}/n{{size}}_seed{{seed}}.parquet",
    log:
        f"{RESULTS}/logs/splits/{{space}}/{{dataset}}/n{{size}}_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/splits/{{space}}/{{dataset}}/n{{size}}_seed{{seed}}.tsv"
    wildcard_constraints:
        size=r"\d+",
        seed=r"\d+",
    conda:
        "../envs/parzc.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: 1000 * attempt,
        runtime=lambda wc, attempt: 5 * attempt,
    params:
        pool=lambda wc: PLAN.pool(wc.space),
    script:
        "../scripts/make_split.py"


rule assemble_matrix:
    input:
        features=lambda wc: PLAN.target_shards("features", wc.space, wc.dataset),
        arch_stats=lambda wc: PLAN.target_shards("arch_stats", wc.space, wc.dataset),
    output:
        f"{RESULTS}/matrices/{{space}}/{{dataset}}.npz",
    log:
        f"{RESULTS}/logs/matrices/{{space}}/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/matrices/{{space}}/{{dataset}}.tsv"
    conda:
        "../envs/parzc.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=lambda wc, attempt: 10 * attempt,
    params:
        results=RESULTS,
        proxy_dataset=lambda wc: PLAN.proxy_dataset(wc.space, wc.dataset),
        features=config["train"]["features"],
    script:
        "../scripts/assemble_matrix.py"


rule train_predictor:
    input:
        split=rules.make_split.output[0],
        matrix=rules.assemble_matrix.output[0],
    output:
        predictions=f"{RESULTS}/predictions/space={{space}}/dataset={{dataset}}/predictor={{predictor}}/n{{size}}_seed{{seed}}.parquet",
        model=f"{RESULTS}/models/{{space}}/{{dataset}}/{{predictor}}/n{{size}}_seed{{seed}}.pkl",
    log:
        f"{RESULTS}/logs/train/{{space}}/{{dataset}}/{{predictor}}/n{{size}}_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{space}}/{{dataset}}/{{predictor}}/n{{size}}_seed{{seed}}.tsv"
    wildcard_constraints:
        size=r"\d+",
        seed=r"\d+",
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
    script:
        "../scripts/train_predictor.py"


rule evaluate:
    input:
        rules.train_predictor.output.predictions,
    output:
        f"{RESULTS}/metrics/{{space}}/{{dataset}}/{{predictor}}/n{{size}}_seed{{seed}}.parquet",
    log:
        f"{RESULTS}/logs/evaluate/{{space}}/{{dataset}}/{{predictor}}/n{{size}}_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate/{{space}}/{{dataset}}/{{predictor}}/n{{size}}_seed{{seed}}.tsv"
    wildcard_constraints:
        size=r"\d+",
        seed=r"\d+",
    conda:
        "../envs/parzc.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: 1000 * attempt,
        runtime=lambda wc, attempt: 5 * attempt,
    script:
        "../scripts/evaluate.py"
