//! The AWS managed policies the lab needs, by their real names and ARNs and with their real
//! documents, so that attaching `AmazonEKSWorkerNodePolicy` or `AmazonEC2ContainerRegistryReadOnly`
//! grants exactly what it grants on AWS.
//!
//! Sources (AWS Managed Policy Reference, docs.aws.amazon.com/aws-managed-policy/latest/reference/):
//! `AmazonEKSWorkerNodePolicy` v3 (edited 2023-11-27), `AmazonEC2ContainerRegistryReadOnly` v3,
//! `AmazonEC2ContainerRegistryPullOnly` v1 (2024-10-04), `AmazonEKSClusterPolicy` v8
//! (2025-04-17; AWS has since published later versions), `AdministratorAccess` v1;
//! `AmazonEKS_CNI_Policy` as aws/amazon-vpc-cni-k8s docs/iam-policy.md gives it.
//! `ReadOnlyAccess` is a **simplified subset** (the real document lists thousands of actions
//! over every service); it covers the services the lab serves.

/// One catalogued AWS managed policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AwsManagedPolicy {
    /// The policy name (also the last part of its ARN).
    pub name: &'static str,
    /// Its path (`/` for all of these).
    pub path: &'static str,
    /// `DefaultVersionId` as AWS reports it.
    pub version_id: &'static str,
    /// AWS's description.
    pub description: &'static str,
    /// The default version's document.
    pub document: &'static str,
}

/// The account that owns AWS managed policies in their ARNs (`arn:aws:iam::aws:policy/...`).
pub const AWS_ACCOUNT: &str = "aws";

/// The catalogue.
pub const CATALOGUE: &[AwsManagedPolicy] = &[
    AwsManagedPolicy {
        name: "AdministratorAccess",
        path: "/",
        version_id: "v1",
        description: "Provides full access to AWS services and resources.",
        document: r#"{
  "Version" : "2012-10-17",
  "Statement" : [
    {
      "Effect" : "Allow",
      "Action" : "*",
      "Resource" : "*"
    }
  ]
}"#,
    },
    AwsManagedPolicy {
        name: "ReadOnlyAccess",
        path: "/",
        version_id: "v1",
        description: "Provides read-only access to AWS services and resources.",
        document: r#"{
  "Version" : "2012-10-17",
  "Statement" : [
    {
      "Effect" : "Allow",
      "Action" : [
        "ec2:Describe*",
        "ec2:Get*",
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:Describe*",
        "ecr:Get*",
        "ecr:List*",
        "eks:Describe*",
        "eks:List*",
        "iam:Generate*",
        "iam:Get*",
        "iam:List*",
        "iam:Simulate*",
        "sts:GetCallerIdentity"
      ],
      "Resource" : "*"
    }
  ]
}"#,
    },
    AwsManagedPolicy {
        name: "AmazonEKSWorkerNodePolicy",
        path: "/",
        version_id: "v3",
        description: "This policy allows Amazon EKS worker nodes to connect to Amazon EKS Clusters.",
        document: r#"{
  "Version" : "2012-10-17",
  "Statement" : [
    {
      "Sid" : "WorkerNodePermissions",
      "Effect" : "Allow",
      "Action" : [
        "ec2:DescribeInstances",
        "ec2:DescribeInstanceTypes",
        "ec2:DescribeRouteTables",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeSubnets",
        "ec2:DescribeVolumes",
        "ec2:DescribeVolumesModifications",
        "ec2:DescribeVpcs",
        "eks:DescribeCluster",
        "eks-auth:AssumeRoleForPodIdentity"
      ],
      "Resource" : "*"
    }
  ]
}"#,
    },
    AwsManagedPolicy {
        name: "AmazonEKS_CNI_Policy",
        path: "/",
        version_id: "v1",
        description: "This policy provides the Amazon VPC CNI Plugin (amazon-vpc-cni-k8s) the permissions it requires to modify the IP address configuration on your EKS worker nodes.",
        document: r#"{
  "Version" : "2012-10-17",
  "Statement" : [
    {
      "Sid" : "AmazonEKSCNIPolicy",
      "Effect" : "Allow",
      "Action" : [
        "ec2:AssignPrivateIpAddresses",
        "ec2:AttachNetworkInterface",
        "ec2:CreateNetworkInterface",
        "ec2:DeleteNetworkInterface",
        "ec2:DescribeInstances",
        "ec2:DescribeTags",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeInstanceTypes",
        "ec2:DescribeSubnets",
        "ec2:DetachNetworkInterface",
        "ec2:ModifyNetworkInterfaceAttribute",
        "ec2:UnassignPrivateIpAddresses"
      ],
      "Resource" : "*"
    },
    {
      "Sid" : "AmazonEKSCNIPolicyENITag",
      "Effect" : "Allow",
      "Action" : [
        "ec2:CreateTags"
      ],
      "Resource" : [
        "arn:aws:ec2:*:*:network-interface/*"
      ]
    }
  ]
}"#,
    },
    AwsManagedPolicy {
        name: "AmazonEC2ContainerRegistryReadOnly",
        path: "/",
        version_id: "v3",
        description: "Provides read-only access to Amazon EC2 Container Registry repositories.",
        document: r#"{
  "Version" : "2012-10-17",
  "Statement" : [
    {
      "Effect" : "Allow",
      "Action" : [
        "ecr:GetAuthorizationToken",
        "ecr:BatchCheckLayerAvailability",
        "ecr:GetDownloadUrlForLayer",
        "ecr:GetRepositoryPolicy",
        "ecr:DescribeRepositories",
        "ecr:ListImages",
        "ecr:DescribeImages",
        "ecr:BatchGetImage",
        "ecr:GetLifecyclePolicy",
        "ecr:GetLifecyclePolicyPreview",
        "ecr:ListTagsForResource",
        "ecr:DescribeImageScanFindings"
      ],
      "Resource" : "*"
    }
  ]
}"#,
    },
    AwsManagedPolicy {
        name: "AmazonEC2ContainerRegistryPullOnly",
        path: "/",
        version_id: "v1",
        description: "Provides access to pull images from Amazon EC2 Container Registry repositories.",
        document: r#"{
  "Version" : "2012-10-17",
  "Statement" : [
    {
      "Effect" : "Allow",
      "Action" : [
        "ecr:GetAuthorizationToken",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
        "ecr:BatchImportUpstreamImage"
      ],
      "Resource" : "*"
    }
  ]
}"#,
    },
    AwsManagedPolicy {
        name: "AmazonEKSClusterPolicy",
        path: "/",
        version_id: "v8",
        description: "This policy provides Kubernetes the permissions it requires to manage resources on your behalf. Kubernetes requires Ec2:CreateTags permissions to place identifying information on EC2 resources including but not limited to Instances, Security Groups, and Elastic Network Interfaces.",
        document: r#"{
  "Version" : "2012-10-17",
  "Statement" : [
    {
      "Sid" : "AmazonEKSClusterPolicy",
      "Effect" : "Allow",
      "Action" : [
        "autoscaling:DescribeAutoScalingGroups",
        "autoscaling:UpdateAutoScalingGroup",
        "ec2:AttachVolume",
        "ec2:AuthorizeSecurityGroupIngress",
        "ec2:CreateRoute",
        "ec2:CreateSecurityGroup",
        "ec2:CreateTags",
        "ec2:CreateVolume",
        "ec2:DeleteRoute",
        "ec2:DeleteSecurityGroup",
        "ec2:DeleteVolume",
        "ec2:DescribeInstances",
        "ec2:DescribeRouteTables",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeSubnets",
        "ec2:DescribeVolumes",
        "ec2:DescribeVolumesModifications",
        "ec2:DescribeVpcs",
        "ec2:DescribeDhcpOptions",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeAvailabilityZones",
        "ec2:DetachVolume",
        "ec2:ModifyInstanceAttribute",
        "ec2:ModifyVolume",
        "ec2:RevokeSecurityGroupIngress",
        "ec2:DescribeAccountAttributes",
        "ec2:DescribeAddresses",
        "ec2:DescribeInternetGateways",
        "ec2:DescribeInstanceTopology",
        "elasticloadbalancing:AddTags",
        "elasticloadbalancing:ApplySecurityGroupsToLoadBalancer",
        "elasticloadbalancing:AttachLoadBalancerToSubnets",
        "elasticloadbalancing:ConfigureHealthCheck",
        "elasticloadbalancing:CreateListener",
        "elasticloadbalancing:CreateLoadBalancer",
        "elasticloadbalancing:CreateLoadBalancerListeners",
        "elasticloadbalancing:CreateLoadBalancerPolicy",
        "elasticloadbalancing:CreateTargetGroup",
        "elasticloadbalancing:DeleteListener",
        "elasticloadbalancing:DeleteLoadBalancer",
        "elasticloadbalancing:DeleteLoadBalancerListeners",
        "elasticloadbalancing:DeleteTargetGroup",
        "elasticloadbalancing:DeregisterInstancesFromLoadBalancer",
        "elasticloadbalancing:DeregisterTargets",
        "elasticloadbalancing:DescribeListeners",
        "elasticloadbalancing:DescribeLoadBalancerAttributes",
        "elasticloadbalancing:DescribeLoadBalancerPolicies",
        "elasticloadbalancing:DescribeLoadBalancers",
        "elasticloadbalancing:DescribeTargetGroupAttributes",
        "elasticloadbalancing:DescribeTargetGroups",
        "elasticloadbalancing:DescribeTargetHealth",
        "elasticloadbalancing:DetachLoadBalancerFromSubnets",
        "elasticloadbalancing:ModifyListener",
        "elasticloadbalancing:ModifyLoadBalancerAttributes",
        "elasticloadbalancing:ModifyTargetGroup",
        "elasticloadbalancing:ModifyTargetGroupAttributes",
        "elasticloadbalancing:RegisterInstancesWithLoadBalancer",
        "elasticloadbalancing:RegisterTargets",
        "elasticloadbalancing:SetLoadBalancerPoliciesForBackendServer",
        "elasticloadbalancing:SetLoadBalancerPoliciesOfListener",
        "kms:DescribeKey"
      ],
      "Resource" : "*"
    },
    {
      "Sid" : "AmazonEKSClusterPolicySLRCreate",
      "Effect" : "Allow",
      "Action" : "iam:CreateServiceLinkedRole",
      "Resource" : "*",
      "Condition" : {
        "StringEquals" : {
          "iam:AWSServiceName" : "elasticloadbalancing.amazonaws.com"
        }
      }
    },
    {
      "Sid" : "AmazonEKSClusterPolicyENIDelete",
      "Effect" : "Allow",
      "Action" : "ec2:DeleteNetworkInterface",
      "Resource" : "*",
      "Condition" : {
        "StringEquals" : {
          "ec2:ResourceTag/eks:eni:owner" : "amazon-vpc-cni"
        }
      }
    }
  ]
}"#,
    },
];

/// The catalogued policy with this name.
pub fn by_name(name: &str) -> Option<&'static AwsManagedPolicy> {
    CATALOGUE.iter().find(|p| p.name == name)
}

/// The name in an AWS managed policy ARN (`arn:<partition>:iam::aws:policy/<name>`), if it is
/// one.
pub fn name_from_arn(arn: &str) -> Option<&str> {
    let rest = arn.strip_prefix("arn:")?;
    let (_, rest) = rest.split_once(':')?;
    let path = rest.strip_prefix("iam::aws:policy")?;
    path.rsplit('/').next().filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{PolicyDocument, PolicyKind};

    #[test]
    fn catalogue_parses() {
        for p in CATALOGUE {
            PolicyDocument::parse(p.document, PolicyKind::Managed)
                .unwrap_or_else(|e| panic!("{}: {e}", p.name));
        }
        assert_eq!(
            name_from_arn("arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"),
            Some("AmazonEKS_CNI_Policy")
        );
        assert_eq!(name_from_arn("arn:aws:iam::123456789012:policy/x"), None);
    }
}
