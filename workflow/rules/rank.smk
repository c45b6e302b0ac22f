rule rank_candidates:
    input:
        matrix=rules.assemble_matrix.output[0],
    output:
        ranking=LAYOUT.pattern("ranking"),
        model=LAYOUT.pattern("rank_model"),
    log:
        LAYOUT.log("ranking"),
    benchmark:
        LAYOUT.benchmark("ranking")
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
        "../scripts/rank_candidates.py"


rule ranking_table:
    input:
        rankings=lambda wc: PLAN.rank_inputs(wc.space, wc.dataset),
        matrix=rules.assemble_matrix.output[0],
    output:
        csv=LAYOUT.pattern("ranking_csv"),
        md=report(
            LAYOUT.pattern("ranking_md"),
            category="Ranking",
            caption="../report/ranking.rst",
        ),
    log:
        LAYOUT.log("ranking_csv"),
    benchmark:
        LAYOUT.benchmark("ranking_csv")
    conda:
        "../envs/parzc.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: 1000 * attempt,
        runtime=lambda wc, attempt: 5 * attempt,
    params:
        top=config["rank"]["top"],
        constraints=lambda wc: config["spaces"][wc.space].get("constraints", {}),
    script:
        "../scripts/ranking_table.py"
