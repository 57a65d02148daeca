"""Regions that offer KPS: the one list a sweep consults.

Copied from the official huaweicloudsdkkps 3.1.219, `huaweicloudsdkkps/v3/region/kps_region.py`: 30 regions, each
served at `https://kms.{region}.myhuaweicloud.com`. When Huawei opens KPS in a new region (a newer
huaweicloudsdkkps lists it), add its name here; `tests/test_sweep_regions.py` keeps the list well-formed.
"""

from __future__ import annotations

REGIONS_WITH_KPS = frozenset(
    {
        "af-north-1",
        "af-south-1",
        "ap-southeast-1",
        "ap-southeast-2",
        "ap-southeast-3",
        "ap-southeast-4",
        "ap-southeast-5",
        "cn-east-2",
        "cn-east-3",
        "cn-east-4",
        "cn-east-5",
        "cn-north-1",
        "cn-north-2",
        "cn-north-4",
        "cn-north-9",
        "cn-north-11",
        "cn-north-12",
        "cn-southwest-2",
        "cn-southwest-3",
        "cn-south-1",
        "cn-south-2",
        "cn-south-4",
        "la-north-2",
        "la-south-2",
        "me-east-1",
        "my-kualalumpur-1",
        "na-mexico-1",
        "ru-moscow-1",
        "sa-brazil-1",
        "tr-west-1",
    }
)
