"""Design section 2, the GPU generation service on EC2 capacity (g4dn) with a capacity provider."""

from __future__ import annotations

from aws_cdk import Duration, Tags
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from constructs import Construct
from textnlp import deployment
from textnlp.observability.emf import GPU_UTILIZATION

from textnlp_infra.checkov import skip_checks
from textnlp_infra.config import EnvConfig
from textnlp_infra.constructs.api_service import custom_metric
from textnlp_infra.constructs.containers import WORKER_STOP_TIMEOUT_S, ContainerFactory
from textnlp_infra.tagging import required_tags

GPU_PLACEMENT = "attribute:ecs.instance-type =~ g4dn.*"


class GenerationService(Construct):
    def __init__(
        self, scope: Construct, id_: str, *, config: EnvConfig, cluster: ecs.Cluster,
        security_group: ec2.ISecurityGroup, execution_role: iam.IRole, task_role: iam.IRole,
        containers: ContainerFactory,
    ) -> None:
        super().__init__(scope, id_)
        compute = config.compute
        self.service_name = config.resource_name("generation")
        self.capacity_provider = self._capacity(config, cluster, security_group)

        task = ecs.TaskDefinition(
            self, "Task",
            family=self.service_name,
            compatibility=ecs.Compatibility.EC2,
            network_mode=ecs.NetworkMode.AWS_VPC,
            cpu=str(compute.generation_cpu),
            memory_mib=str(compute.generation_memory_mib),
            execution_role=execution_role,
            task_role=task_role,
            placement_constraints=[ecs.PlacementConstraint.member_of(GPU_PLACEMENT)],
        )
        containers.add_app_container(
            task, name="generation", component="generation", repository="textnlp-generation",
            command=deployment.GENERATION_COMMAND, service_name=self.service_name,
            gpus=compute.generation_gpus, stop_timeout_s=WORKER_STOP_TIMEOUT_S,
        )
        containers.add_xray_sidecar(task, "generation")
        self.service = ecs.Ec2Service(
            self, "Service",
            service_name=self.service_name,
            cluster=cluster,
            task_definition=task,
            desired_count=compute.generation_desired_count,
            security_groups=[security_group],
            vpc_subnets=ec2.SubnetSelection(subnet_group_name="private"),
            capacity_provider_strategies=[
                ecs.CapacityProviderStrategy(
                    capacity_provider=self.capacity_provider.capacity_provider_name, weight=1
                )
            ],
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
            propagate_tags=ecs.PropagatedTagSource.SERVICE,
        )
        scaling = self.service.auto_scale_task_count(
            min_capacity=compute.generation_desired_count,
            max_capacity=compute.generation_max_instances,
        )
        scaling.scale_to_track_custom_metric(
            "GpuUtilization",
            metric=custom_metric(config, GPU_UTILIZATION, self.service_name),
            target_value=compute.scaling.gpu_utilization_percent,
            scale_in_cooldown=Duration.seconds(compute.scaling.scale_in_cooldown_s),
            scale_out_cooldown=Duration.seconds(compute.scaling.scale_out_cooldown_s),
        )

    def _capacity(
        self, config: EnvConfig, cluster: ecs.Cluster, security_group: ec2.ISecurityGroup
    ) -> ecs.AsgCapacityProvider:
        compute = config.compute
        role = iam.Role(
            self, "InstanceRole", assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name("AmazonSSMManagedInstanceCore")
            ],
        )
        launch_template = ec2.LaunchTemplate(
            self, "LaunchTemplate",
            launch_template_name=f"{config.name}-gpu",
            instance_type=ec2.InstanceType(compute.generation_instance_type),
            # The ECS-optimised GPU AMI (NVIDIA driver + container toolkit); its id is an SSM
            # parameter that CloudFormation resolves at deployment, not at synthesis.
            machine_image=ecs.EcsOptimizedImage.amazon_linux2(ecs.AmiHardwareType.GPU),
            role=role,
            security_group=security_group,
            user_data=ec2.UserData.for_linux(),
            require_imdsv2=True,
            detailed_monitoring=True,
            block_devices=[
                ec2.BlockDevice(
                    device_name="/dev/xvda",
                    # Room for CUDA images and model weights; gp3 with its IOPS and throughput
                    # raised (the cost section's "customized IOPS"): a host pulls a multi-GB
                    # image and reads a model's weights at start, at 3,000 / 125 MB/s by default.
                    volume=ec2.BlockDeviceVolume.ebs(
                        200, volume_type=ec2.EbsDeviceVolumeType.GP3, encrypted=True,
                        iops=config.compute.generation_volume_iops,
                        throughput=config.compute.generation_volume_throughput_mibs,
                    ),
                )
            ],
        )
        # The L2 launch template copies its own tags onto the instances and volumes it launches;
        # the backup plan selects the volumes by these tags.
        for key, value in required_tags(config).items():
            Tags.of(launch_template).add(key, value)
        group = autoscaling.AutoScalingGroup(
            self, "Instances",
            vpc=cluster.vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_group_name="private"),
            launch_template=launch_template,
            min_capacity=compute.generation_min_instances,
            max_capacity=compute.generation_max_instances,
            new_instances_protected_from_scale_in=True,
        )
        provider = ecs.AsgCapacityProvider(
            self, "CapacityProvider",
            capacity_provider_name=f"{config.name}-gpu",
            auto_scaling_group=group,
            enable_managed_scaling=True,
            enable_managed_termination_protection=True,
            target_capacity_percent=100,
        )
        cluster.add_asg_capacity_provider(provider)
        skip_checks(
            role.node.find_child("DefaultPolicy"),
            ("CKV_AWS_111", "The ECS container agent's permissions, as CDK grants them for "
             "cluster membership: ecs:DiscoverPollEndpoint and the agent's log writes take no "
             "resource-level ARN."),
        )
        return provider
