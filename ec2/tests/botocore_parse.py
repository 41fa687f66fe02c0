"""Parses netlab-ec2's XML with botocore's own ec2 parser against the real operation models.

Usage: python3 botocore_parse.py DIR   (DIR holds <Operation>.xml files and error.xml)
Exits 0 and prints the number of checks when every response parses into the shape `aws ec2`
would print; exits 1 with the first mismatch otherwise.
"""
import os
import sys

import botocore.session
from botocore import parsers

model = botocore.session.get_session().get_service_model("ec2")
parser = parsers.create_parser("ec2")
d = sys.argv[1]


def parse(op, status=200):
    body = open(os.path.join(d, op + ".xml"), "rb").read()
    shape = model.operation_model(op).output_shape if op != "error" else None
    return parser.parse({"body": body, "headers": {}, "status_code": status}, shape)


checks = 0


def check(cond, what):
    global checks
    checks += 1
    if not cond:
        print("FAIL:", what)
        sys.exit(1)


r = parse("DescribeInstances")
inst = r["Reservations"][0]["Instances"][0]
check(inst["InstanceId"].startswith("i-"), "InstanceId")
check(inst["State"] == {"Code": 16, "Name": "running"}, "State %r" % inst.get("State"))
check(inst["InstanceType"] == "t3.medium", "InstanceType")
check(inst["Placement"]["AvailabilityZone"] == "us-east-1a", "Placement")
check(inst["Tags"] == [{"Key": "Name", "Value": "node-1"}], "Tags %r" % inst.get("Tags"))
check(inst["MetadataOptions"]["HttpPutResponseHopLimit"] == 1, "MetadataOptions")
check(len(inst["NetworkInterfaces"]) == 2, "instance ENIs")
check(inst["NetworkInterfaces"][0]["Attachment"]["DeviceIndex"] == 0, "DeviceIndex")
check(hasattr(inst["LaunchTime"], "year"), "LaunchTime is a timestamp")
check(r["ResponseMetadata"]["RequestId"] == "req-1", "RequestId")

r = parse("DescribeNetworkInterfaces")
enis = r["NetworkInterfaces"]
check(len(enis) == 2, "ENI count")
secondary = [e for e in enis if e.get("Attachment", {}).get("DeviceIndex") == 1][0]
check(secondary["Status"] == "in-use", "Status")
check(secondary["Description"] == "aws-K8S-i", "Description")
check(secondary["TagSet"] == [{"Key": "k", "Value": "v"}], "TagSet")
check(secondary["SourceDestCheck"] is False, "SourceDestCheck")
ips = secondary["PrivateIpAddresses"]
check(len(ips) == 3 and ips[0]["Primary"] is True and ips[1]["Primary"] is False, "PrivateIpAddresses")
check(secondary["Groups"][0]["GroupName"] == "default", "Groups")
check(secondary["MacAddress"].startswith("02:"), "MacAddress")

r = parse("CreateNetworkInterface")
check(r["NetworkInterface"]["Status"] == "available", "create status")
check(len(r["NetworkInterface"]["PrivateIpAddresses"]) == 3, "create addresses")

r = parse("AttachNetworkInterface")
check(r["AttachmentId"].startswith("eni-attach-") and r["NetworkCardIndex"] == 0, "attach")

r = parse("AssignPrivateIpAddresses")
check(len(r["AssignedPrivateIpAddresses"]) == 2, "assigned")
check(r["NetworkInterfaceId"].startswith("eni-"), "assign eni")

r = parse("DescribeInstanceTypes")
ni = r["InstanceTypes"][0]["NetworkInfo"]
check(ni["MaximumNetworkInterfaces"] == 3 and ni["Ipv4AddressesPerInterface"] == 6, "NetworkInfo")
check(ni["NetworkCards"][0]["MaximumNetworkInterfaces"] == 3, "NetworkCards")
check(r["InstanceTypes"][0]["ProcessorInfo"]["SupportedArchitectures"] == ["x86_64"], "arch")
check(r["InstanceTypes"][0]["VCpuInfo"]["DefaultVCpus"] == 2, "vcpus")

r = parse("DescribeSubnets")
check(len(r["Subnets"]) == 3, "subnets")
check(all(isinstance(s["AvailableIpAddressCount"], int) for s in r["Subnets"]), "AvailableIpAddressCount")

r = parse("DescribeVpcs")
check(r["Vpcs"][0]["CidrBlock"] == "192.168.0.0/16", "vpc cidr")
check(r["Vpcs"][0]["CidrBlockAssociationSet"][0]["CidrBlockState"]["State"] == "associated", "assoc")

for op in ("ModifyNetworkInterfaceAttribute", "DetachNetworkInterface", "DeleteNetworkInterface",
           "CreateTags", "DeleteTags"):
    r = parse(op)
    check(r["ResponseMetadata"]["RequestId"] == "req-1", op)

r = parse("error", 400)
check(r["Error"]["Code"] == "PrivateIpAddressLimitExceeded", "error code %r" % r)
check(r["Error"]["Message"] == "Number of private addresses will exceed limit.", "error message")
check(r["ResponseMetadata"]["RequestId"] == "req-err", "error request id")

print("botocore parsed every response: %d checks ok" % checks)
