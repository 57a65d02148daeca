# Two projects on every run: a sub-project of the function's region and the default project of another region.
# Each is granted the agency's role by its IAM project name (a region's default project is named after the region,
# a sub-project <region>_<name>), and requests may name these two only.
# terraform apply -var-file=examples/projects.tfvars

region     = "cn-north-4"
project_id = "4b1f2a0c9e7d4c3b8a6f5e4d3c2b1a09" # the function's own project

projects = [
  { name = "cn-north-4_payments", id = "0a1b2c3d4e5f60718293a4b5c6d7e8f9" },
  { name = "ap-southeast-3", id = "5c6d7e8f90a1b2c3d4e5f60718293a4b" },
]
