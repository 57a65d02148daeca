# Nightly selective cleanup: every night at 02:30, delete only the failed tasks older than a week (KPS_SELECT,
# docs/selective-cleanup.md), keep the rest for someone to look at. No HTTP trigger.
# terraform apply -var-file=examples/nightly-selective.tfvars

region     = "cn-north-4"
project_id = "4b1f2a0c9e7d4c3b8a6f5e4d3c2b1a09"

schedule = "0 30 2 * * ?"
timeout  = 120

settings = {
  KPS_SELECT = "{\"older_than_hours\": 168}" # JSON text: tfvars take literals only, no jsonencode()
  LOG_LEVEL  = "INFO"
}

alarm_email = "ops@example.com"
