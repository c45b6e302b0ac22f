rule extract_shard:
    output:
        features=f"{RESULTS}/features/space={{space}}/dataset={{dataset}}/set={{fset}}/part-{{start}}-{{end}}.parquet",
        arch_stats=f"{RESULTS}/arch_stats/space={{space}}/dataset={{dataset}}/set={{fset}}/part-{{start}}-{{end}}.parquet",
    log:
        f"{RESULTS}/logs/extract/{{space}}/{{dataset}}/{{fset}}/part-{{start}}-{{end}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/extract/{{space}}/{{dataset}}/{{fset}}/part-{{start}}-{{end}}.tsv"
    wildcard_constraints:
        start=r"\d{5}",
        end=r"\d{5}",
    conda:
        "../envs/parzc.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: 2000 * attempt,
        runtime=lambda wc, attempt: 60 * attempt,
    params:
        settings=lambda wc: PLAN.extract_settings(wc.space, wc.dataset, wc.fset),
        device=config["device"],
    script:
        "../scripts/extract_shard.py"
