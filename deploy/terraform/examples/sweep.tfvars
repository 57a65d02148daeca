# Every project the agency can see, in two regions, every six hours, as a dry run first: set KPS_DRY_RUN to
# "false" once the counts in the logs look right. The agency's role is then granted on all resources.
# terraform apply -var-file=examples/sweep.tfvars

region     = "cn-north-4"
project_id = "4b1f2a0c9e7d4c3b8a6f5e4d3c2b1a09" # the function's own project (not an allow-list in a sweep)
sweep      = true

schedule_type = "Rate"
schedule      = "6h"
timeout       = 300

settings = {
  KPS_REGIONS     = "cn-north-4,ap-southeast-3"
  KPS_DRY_RUN     = "true"
  KPS_CONCURRENCY = "8"
}
