"""AWS Lambda handlers: the API Gateway authorizer, the S3 -> Step Functions batch trigger and
the deployment's migration trigger (ECS RunTask before the services roll).

They run from the asset ``infra/textnlp_infra/lambda_asset.py`` builds: the ``textnlp`` source
plus PyJWT, on a runtime that provides boto3. So they import at module level only the standard
library, PyJWT and ``textnlp`` modules that import nothing else (``textnlp.auth.jwt_rules``,
``textnlp.auth.api_keys``, ``textnlp.auth.session_items``, ``textnlp.deployment``,
``textnlp.errors``, this package); boto3 is imported where a
client is first needed, and clients are built once per container.
"""
