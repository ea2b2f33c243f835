"""TextNLP's AWS deployment, as an AWS CDK v2 app.

`textnlp_infra.app.build_app` assembles one stack per lifecycle group; each section of
`seed/aws-infrastructure-design.md` is one stack or one construct (see infra/README.md).
"""
