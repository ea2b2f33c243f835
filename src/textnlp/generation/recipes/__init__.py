"""Dataset recipes: records built from named columns that depend on each other.

A recipe file::

    id: persona-qa
    version: "1"
    description: Questions in a sampled person's voice, answered and judged
    model: smollm2-135m        # the llm columns' default model (else the run's --model)
    output: answer             # the column that is a record's text (default: last llm column)
    labels: [topic]            # columns that label records in summaries
    columns:
      # samplers: randomness from (run seed, record index, column name) only
      topic:  {type: category, values: [billing, shipping], weights: [2, 1]}
      issue:  {type: subcategory, parent: topic,
               values: {billing: [refund, invoice], shipping: [late, lost]}}
      age:    {type: uniform, low: 18, high: 80, integer: true}
      mood:   {type: gaussian, mean: 0.0, stddev: 1.0}
      items:  {type: poisson, mean: 3}
      urgent: {type: bernoulli, p: 0.3}
      when:   {type: datetime, start: "2024-01-01", end: "2024-12-31"}
      ticket: {type: uuid}
      person: {type: person, locale: en_US}   # name, first_name, age, gender, occupation...
      task:   {type: seed, path: tasks.jsonl, replace: false}  # a row of JSONL/CSV/Parquet
      # expressions: Jinja2 over earlier columns
      hello:  {type: expression, expr: "Hi, I'm {{ person.first_name }}"}
      # llm columns: a prompt over earlier columns, with its own model and parameters
      question: {type: llm-text, system: "...", params: {max_tokens: 60},
                 prompt: "Ask about {{ issue }} as {{ person.name }}."}
      answer:   {type: llm-text, prompt: "Answer: {{ question }}", model: smollm2-135m}
      facts:    {type: llm-structured, prompt: "...", schema: {type: object}}  # JSON, checked
      score:    {type: llm-judge, prompt: "Q: {{ question }} A: {{ answer }}",
                 rubric: {helpfulness: {description: "...", scores: {1: useless, 5: perfect}}}}
      chat:     {type: dialogue, turns: 4,
                 roles: {user: {system: "...", prompt: "..."}, assistant: {system: "..."}}}
      # filters: accept or reject the record, with the reason kept
      polite: {type: filter, rule: refusal, column: answer}
      good:   {type: filter, rule: judge, column: score, min: 3}
    export: {messages: [{role: user, column: question}, {role: assistant, column: answer}]}

Columns form a DAG (a column depends on every column its templates name), checked before any
model is called. Filters run as soon as what they read is ready, so a rejected record stops
before its later llm columns are paid for.

A record of a recipe: ``variables`` holds the sampler, seed and expression columns, ``data``
the llm columns (text, structured object, judge scores ``{criterion: {score, reason}}``,
dialogue ``[{role, content}, ...]``), ``text`` the output column as text; its status is ``ok``,
``failed`` (a cell failed, e.g. no valid JSON after the retries) or ``rejected`` (a filter said
no; ``error`` gives the filter and its reason); ``provenance.cells`` says per llm cell which
model, parameters, seed, tokens, cost, latency and attempts made it.
"""
