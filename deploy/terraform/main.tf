# kps-failed-task-cleaner on FunctionGraph: the function, its logs, the agency it runs under and its least-privilege
# role. Triggers in triggers.tf, the alarm in alarm.tf. See docs/deploy.md and docs/iam.md.

locals {
  package_path = coalesce(var.package_path, "${path.module}/../../dist/kps-failed-task-cleaner.zip")
  # The function's HTTP budget when KPS_HTTP_BUDGET_SECONDS is not set (function/settings.py's default).
  default_http_budget_seconds = 55

  # What this module sets; var.settings adds to it and wins (README, Settings, for every name).
  module_settings = merge(
    {
      KPS_REGION           = var.region
      KPS_RAISE_ON_FAILURE = "true" # a failed run counts in failcount, so the alarm sees it
    },
    var.sweep ? { KPS_TARGETS = "all" } : {
      KPS_PROJECT_ID          = var.project_id
      KPS_ALLOWED_PROJECT_IDS = join(",", distinct(concat([var.project_id], var.allowed_project_ids)))
    },
  )
  user_data = merge(local.module_settings, var.settings)
  # A sweep, however it is asked for: the agency's role then applies to every project.
  sweep = lower(trimspace(lookup(local.user_data, "KPS_TARGETS", ""))) == "all"
}

resource "huaweicloud_lts_group" "this" {
  group_name  = var.function_name
  ttl_in_days = var.log_ttl_days
}

resource "huaweicloud_lts_stream" "this" {
  group_id    = huaweicloud_lts_group.this.id
  stream_name = var.function_name
}

# Only the KPS actions the function calls: ListFailedTask (the count before deleting, dry runs) and
# DeleteAllFailedTask / DeleteFailedTask. Listing projects for a sweep (IAM KeystoneListAuthProjects) needs no
# policy: it returns the projects the agency's token may act in, which is what the role assignment below decides.
resource "huaweicloud_identity_role" "kps_failed_tasks" {
  name        = "${var.function_name}-kps-failed-tasks"
  description = "List and delete KPS failed key pair tasks (${var.function_name})"
  type        = "XA" # project-level: KPS is a regional service
  policy = jsonencode({
    Version = "1.1"
    Statement = [{
      Effect = "Allow"
      Action = [
        "kps:domainKeypairs:getfailtask",
        "kps:domainKeypairs:deletefailtask",
        "kps:domainKeypairs:deletefailtasks",
      ]
    }]
  })
}

resource "huaweicloud_identity_agency" "this" {
  name                   = var.function_name
  description            = "FunctionGraph's agency for ${var.function_name}: list and delete KPS failed tasks"
  delegated_service_name = "op_svc_cff" # FunctionGraph (not delegated_domain_name: it drifts, see docs/iam.md)
  duration               = "FOREVER"

  # The project to clean, in its region (a region's default project is named after it) ...
  dynamic "project_role" {
    for_each = local.sweep ? [] : [var.region]
    content {
      project = project_role.value
      roles   = [huaweicloud_identity_role.kps_failed_tasks.name]
    }
  }
  # ... or, for a sweep, every project: the projects IAM lists are the ones the role applies to.
  all_resources_roles = local.sweep ? [huaweicloud_identity_role.kps_failed_tasks.name] : null
}

resource "huaweicloud_fgs_function" "this" {
  name                  = var.function_name
  app                   = "default"
  description           = "Clears KPS failed key pair tasks"
  runtime               = var.runtime
  functiongraph_version = "v2" # ForceNew and Computed: always explicit
  handler               = "handler.handler"
  code_type             = "zip"
  code_filename         = basename(local.package_path)
  func_code             = filebase64(local.package_path)
  memory_size           = var.memory_size
  timeout               = var.timeout
  agency                = huaweicloud_identity_agency.this.name
  user_data             = jsonencode(local.user_data)
  encrypted_user_data   = length(var.secret_settings) > 0 ? jsonencode(var.secret_settings) : null

  enable_lts_log  = true
  log_group_id    = huaweicloud_lts_group.this.id
  log_group_name  = huaweicloud_lts_group.this.group_name
  log_stream_id   = huaweicloud_lts_stream.this.id
  log_stream_name = huaweicloud_lts_stream.this.stream_name

  lifecycle {
    precondition {
      condition     = length(jsonencode(merge(local.user_data, nonsensitive(var.secret_settings)))) <= 4096
      error_message = "FunctionGraph takes at most 4096 characters of environment variables in all."
    }
  }
}
