"""AWS Lambda handlers: the API Gateway authorizer and the S3 -> ECS batch trigger.

They import only the standard library, boto3 and PyJWT at module level (plus the API's own
token checks when they are importable), and build their clients once per container.
"""
