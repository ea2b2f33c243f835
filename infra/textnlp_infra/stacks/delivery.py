"""Design section 13, delivery: CodePipeline GitHub -> CodeBuild -> migration -> ECS, blue/green
for the API.

Between the build and the deploys, the `Migrate` stage runs the release's database migration
(`textnlp db upgrade`) as a one-off ECS task with the new image and waits for it to exit 0:
services refuse to start on an older schema, and no two tasks ever migrate at once.

The design names both "Deploy: Provider ECS" and a CodeDeploy blue/green configuration. Both
hold: the API service (behind the ALB) is deployed by CodeDeploy's ECS blue/green action
(ECSLinear10PercentEvery1Minutes, blue terminated after 5 minutes); the queue workers, which have
no load balancer to shift, by the plain ECS action with `imagedefinitions.json`. The design's
`greenFleetProvisioningOption: COPY_AUTO_SCALING_GROUP` applies to EC2 deployments only and has no
ECS counterpart; `deploymentReadyOption: CONTINUE_DEPLOYMENT` is the ECS default.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codedeploy as codedeploy
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_codepipeline_actions as cpactions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from textnlp_infra.checkov import skip_checks
from textnlp_infra.config import EnvConfig
from textnlp_infra.constructs.jobs_purge import PURGE_CONTAINER
from textnlp_infra.constructs.worker_services import BATCH_CONTAINER, MIGRATION_CONTAINER
from textnlp_infra.imports import imported_key
from textnlp_infra.stacks.compute import ComputeStack
from textnlp_infra.stacks.security import SecurityStack

_IMAGES = {"textnlp-api": "api", "textnlp-generation": "generation",
           "textnlp-validation": "validation"}


def build_spec(config: EnvConfig) -> codebuild.BuildSpec:
    api_family = config.resource_name("api")
    build_commands = [
        f"docker build -f docker/{dockerfile}.Dockerfile "
        f"-t $ECR_REPOSITORY_URI/{repository}:$IMAGE_TAG ."
        for repository, dockerfile in _IMAGES.items()
    ]
    push_commands = [
        f"docker push $ECR_REPOSITORY_URI/{repository}:$IMAGE_TAG" for repository in _IMAGES
    ]
    return codebuild.BuildSpec.from_object({
        "version": "0.2",
        "phases": {
            "pre_build": {"commands": [
                "IMAGE_TAG=$(echo $CODEBUILD_RESOLVED_SOURCE_VERSION | cut -c1-12)",
                "aws ecr get-login-password --region $AWS_REGION | "
                "docker login --username AWS --password-stdin $ECR_REPOSITORY_URI",
            ]},
            "build": {"commands": build_commands},
            "post_build": {"commands": [
                *push_commands,
                # Rolling deploys of the workers.
                *(
                    f'printf \'[{{"name":"{name}","imageUri":"%s"}}]\' '
                    f"$ECR_REPOSITORY_URI/textnlp-{name}:$IMAGE_TAG > imagedefinitions-{name}.json"
                    for name in ("generation", "validation")
                ),
                # Blue/green of the API: the live task definition with the image as placeholder.
                'printf \'{"ImageURI":"%s"}\' '
                "$ECR_REPOSITORY_URI/textnlp-api:$IMAGE_TAG > imageDetail.json",
                f"aws ecs describe-task-definition --task-definition {api_family} "
                "--query taskDefinition | jq '(.containerDefinitions[] | select(.name==\"api\") "
                ".image) = \"<IMAGE1_NAME>\" | del(.taskDefinitionArn, .revision, .status, "
                ".requiresAttributes, .compatibilities, .registeredAt, .registeredBy)' "
                "> taskdef.json",
                "printf 'version: 0.0\\nResources:\\n  - TargetService:\\n"
                "      Type: AWS::ECS::Service\\n      Properties:\\n"
                "        TaskDefinition: <TASK_DEFINITION>\\n"
                "        LoadBalancerInfo:\\n          ContainerName: api\\n"
                f"          ContainerPort: {config.compute.api_port}\\n' > appspec.yaml",
            ]},
        },
        "artifacts": {"files": [
            "imagedefinitions-generation.json", "imagedefinitions-validation.json",
            "imageDetail.json", "taskdef.json", "appspec.yaml",
        ]},
    })


def _register_with_new_image(family: str, container: str, variable: str) -> list[str]:
    """A new revision of `family` whose `container` runs the image just built (the API image);
    its ARN in `$variable`."""
    return [
        f"aws ecs describe-task-definition --task-definition {family} --query taskDefinition "
        f"| jq --arg image $ECR_REPOSITORY_URI/textnlp-api:$IMAGE_TAG "
        f"'(.containerDefinitions[] | select(.name==\"{container}\") .image) = $image "
        "| del(.taskDefinitionArn, .revision, .status, .requiresAttributes, "
        f".compatibilities, .registeredAt, .registeredBy)' > {family}.json",
        f"{variable}=$(aws ecs register-task-definition --cli-input-json file://{family}.json"
        " --query taskDefinition.taskDefinitionArn --output text)",
    ]


def migration_spec(
    config: EnvConfig, *, cluster: str, subnets: str, security_group: str
) -> codebuild.BuildSpec:
    """Run the migration task with the image just built; fail the stage unless it exits 0.
    Then the batch processor's and the jobs' purge's families get a revision with that image:
    the state machine and the purge's schedule run the family's latest revision, and the old
    image would refuse the upgraded schema."""
    family = config.resource_name("migrate")
    container = MIGRATION_CONTAINER
    return codebuild.BuildSpec.from_object({
        "version": "0.2",
        "phases": {"build": {"commands": [
            "IMAGE_TAG=$(echo $CODEBUILD_RESOLVED_SOURCE_VERSION | cut -c1-12)",
            *_register_with_new_image(family, container, "TASK_DEFINITION"),
            f"TASK=$(aws ecs run-task --cluster {cluster} --task-definition $TASK_DEFINITION "
            "--launch-type FARGATE --started-by textnlp-delivery "
            f"--network-configuration 'awsvpcConfiguration={{subnets=[{subnets}],"
            f"securityGroups=[{security_group}],assignPublicIp=DISABLED}}' "
            "--query 'tasks[0].taskArn' --output text)",
            f"aws ecs wait tasks-stopped --cluster {cluster} --tasks $TASK",
            f"CODE=$(aws ecs describe-tasks --cluster {cluster} --tasks $TASK "
            f"--query 'tasks[0].containers[?name==`{container}`].exitCode' --output text)",
            'echo "migration task exited with $CODE"; test "$CODE" = "0"',
            *_register_with_new_image(
                config.resource_name("batch-processor"), BATCH_CONTAINER, "BATCH_DEFINITION"
            ),
            'echo "batch processor: $BATCH_DEFINITION"',
            *_register_with_new_image(
                config.jobs_purge_family, PURGE_CONTAINER, "PURGE_DEFINITION"
            ),
            'echo "jobs purge: $PURGE_DEFINITION"',
        ]}},
    })


class DeliveryStack(Stack):
    def __init__(
        self, scope: Construct, id_: str, *, config: EnvConfig, security: SecurityStack,
        compute: ComputeStack, **kwargs: Any,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        delivery = config.delivery
        key = imported_key(self, "DataKey", security.keys.data)
        registry_uri = f"{self.account}.dkr.ecr.{self.region}.amazonaws.com"

        artifacts = s3.Bucket(
            self, "Artifacts",
            bucket_name=f"{config.name}-pipeline-artifacts-{config.account}",
            encryption=s3.BucketEncryption.KMS, encryption_key=key, bucket_key_enabled=True,
            versioned=True, enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            server_access_logs_bucket=s3.Bucket.from_bucket_name(
                self, "AccessLogs", security.access_logs.bucket_name),
            server_access_logs_prefix="s3/pipeline-artifacts/",
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(90),
                                              noncurrent_version_expiration=Duration.days(7))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        project = codebuild.PipelineProject(
            self, "Build",
            project_name=f"{config.name}-images",
            build_spec=build_spec(config),
            encryption_key=key,
            environment=codebuild.BuildEnvironment(
                build_image=codebuild.LinuxBuildImage.from_code_build_image_id(
                    delivery.build_image),
                compute_type=codebuild.ComputeType.LARGE,
                privileged=True,
            ),
            environment_variables={
                "ECR_REPOSITORY_URI": codebuild.BuildEnvironmentVariable(value=registry_uri),
                "AWS_REGION": codebuild.BuildEnvironmentVariable(value=self.region),
            },
            timeout=Duration.minutes(60),
        )
        skip_checks(project, ("CKV_AWS_316", "Privileged mode is how CodeBuild runs the Docker "
                              "daemon that builds the three images."))
        project.add_to_role_policy(iam.PolicyStatement(
            actions=["ecr:GetAuthorizationToken", "ecs:DescribeTaskDefinition"], resources=["*"],
        ))
        project.add_to_role_policy(iam.PolicyStatement(
            actions=["ecr:BatchCheckLayerAvailability", "ecr:InitiateLayerUpload",
                     "ecr:UploadLayerPart", "ecr:CompleteLayerUpload", "ecr:PutImage",
                     "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            resources=[f"arn:aws:ecr:{self.region}:{self.account}:repository/{name}"
                       for name in delivery.image_repositories],
        ))

        private = compute.cluster.vpc.select_subnets(subnet_group_name="private")
        migration = codebuild.PipelineProject(
            self, "Migration",
            project_name=f"{config.name}-migrate",
            build_spec=migration_spec(
                config,
                cluster=compute.cluster.cluster_name,
                subnets=",".join(private.subnet_ids),
                security_group=compute.app_security_group.security_group_id,
            ),
            encryption_key=key,
            environment=codebuild.BuildEnvironment(
                build_image=codebuild.LinuxBuildImage.from_code_build_image_id(
                    delivery.build_image),
                compute_type=codebuild.ComputeType.SMALL,
            ),
            environment_variables={
                "ECR_REPOSITORY_URI": codebuild.BuildEnvironmentVariable(value=registry_uri),
            },
            timeout=Duration.minutes(30),
        )
        migration_task = compute.migration.task_definition
        batch_task = compute.batch.task_definition
        purge_task = compute.jobs_purge.task_definition
        migration.add_to_role_policy(iam.PolicyStatement(
            actions=["ecs:DescribeTaskDefinition", "ecs:RegisterTaskDefinition"],
            resources=["*"],
        ))
        migration.add_to_role_policy(iam.PolicyStatement(
            actions=["ecs:RunTask", "ecs:DescribeTasks"],
            resources=[
                f"arn:aws:ecs:{self.region}:{self.account}:task-definition/"
                f"{compute.migration.family}:*",
                f"arn:aws:ecs:{self.region}:{self.account}:task/{config.name}/*",
            ],
        ))
        migration.add_to_role_policy(iam.PolicyStatement(
            actions=["iam:PassRole"],
            # Registering a revision passes its roles too (the same roles: deduplicated).
            resources=list(dict.fromkeys(
                arn for task in (migration_task, batch_task, purge_task)
                for arn in (task.task_role.role_arn, task.obtain_execution_role().role_arn)
            )),
            conditions={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
        ))
        skip_checks(
            migration.role.node.find_child("DefaultPolicy"),  # type: ignore[union-attr]
            ("CKV_AWS_111", "ecs:DescribeTaskDefinition and ecs:RegisterTaskDefinition take no "
             "resource-level ARN (a revision has none before it exists)."),
        )

        self.deployment_group = codedeploy.EcsDeploymentGroup(
            self, "ApiDeploymentGroup",
            application=codedeploy.EcsApplication(self, "Application",
                                                  application_name=config.resource_name("app")
                                                  if not config.is_production else "textnlp"),
            deployment_group_name=config.environment.value,
            service=compute.api.service,
            deployment_config=codedeploy.EcsDeploymentConfig.from_ecs_deployment_config_name(
                self, "DeploymentConfig", delivery.deployment_config),
            blue_green_deployment_config=codedeploy.EcsBlueGreenDeploymentConfig(
                blue_target_group=compute.load_balancer.blue,
                green_target_group=compute.load_balancer.green,
                listener=compute.load_balancer.listener,
                test_listener=compute.load_balancer.test_listener,
                termination_wait_time=Duration.minutes(delivery.blue_termination_wait_minutes),
            ),
            auto_rollback=codedeploy.AutoRollbackConfig(failed_deployment=True,
                                                        stopped_deployment=True),
        )

        source = codepipeline.Artifact("Source")
        build = codepipeline.Artifact("Images")
        worker_deploys = [
            cpactions.EcsDeployAction(
                action_name=name.title(), service=service,
                image_file=build.at_path(f"imagedefinitions-{name}.json"),
            )
            for name, service in (("generation", compute.generation.service),
                                  ("validation", compute.validation.service))
        ]
        self.pipeline = codepipeline.Pipeline(
            self, "Pipeline",
            pipeline_name=f"{config.name}-delivery",
            pipeline_type=codepipeline.PipelineType.V2,
            artifact_bucket=artifacts,
            restart_execution_on_update=True,
            stages=[
                codepipeline.StageProps(stage_name="Source", actions=[
                    cpactions.CodeStarConnectionsSourceAction(
                        action_name="GitHub",
                        owner=delivery.repository_owner, repo=delivery.repository_name,
                        branch=delivery.branch, connection_arn=config.codestar_connection_arn,
                        output=source,
                    )]),
                codepipeline.StageProps(stage_name="Build", actions=[
                    cpactions.CodeBuildAction(action_name="Images", project=project,
                                              input=source, outputs=[build])]),
                codepipeline.StageProps(stage_name="Migrate", actions=[
                    cpactions.CodeBuildAction(action_name="DatabaseUpgrade", project=migration,
                                              input=source)]),
                codepipeline.StageProps(stage_name="Deploy", actions=[
                    cpactions.CodeDeployEcsDeployAction(
                        action_name="ApiBlueGreen",
                        deployment_group=self.deployment_group,
                        task_definition_template_input=build,
                        app_spec_template_input=build,
                        container_image_inputs=[cpactions.CodeDeployEcsContainerImageInput(
                            input=build, task_definition_placeholder="IMAGE1_NAME")],
                    ),
                    *worker_deploys,
                ]),
            ],
        )
        for action in worker_deploys:
            action_scope = self.pipeline.node.find_child("Deploy").node.find_child(
                action.action_properties.action_name
            )
            skip_checks(
                action_scope.node.find_child("CodePipelineActionRole").node.find_child(
                    "DefaultPolicy"
                ),
                ("CKV_AWS_111", "CodePipeline's ECS deploy action registers a new task "
                 "definition revision, which has no ARN before it exists, and passes the "
                 "task roles (iam:PassRole limited to ECS tasks)."),
            )
