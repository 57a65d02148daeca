# kps-failed-task-cleaner on FunctionGraph: the function, its logs, the agency it runs under and its least-privilege
# role. Triggers in triggers.tf, the alarm in alarm.tf. See docs/deploy.md and docs/iam.md.

locals {
  package_path = coalesce(var.package_path, "${path.module}/../../dist/kps-failed-task-cleaner.zip")
  # The function's HTTP budget when KPS_HTTP_BUDGET_SECONDS is not set (function/settings.py's default).
  default_http_budget_seconds = 55

  # The projects to clean, each granted the role by its IAM name (a region's default project is named after the
  # region, a sub-project <region>_<name>): what the function may clean and what the agency may act in are one list.
  projects = length(var.projects) > 0 ? var.projects : [{ name = coalesce(var.project_name, var.region), id = var.project_id }]
  targets  = [for p in local.projects : "${split("_", p.name)[0]}:${p.id}"]
  # One sweep switch: var.settings may not name KPS_TARGETS (variables.tf), so what the module writes is all.
  sweep = var.sweep

  # What this module sets; var.settings adds the rest (it may not name these, see variables.tf).
  module_settings = merge(
    {
      KPS_REGION           = var.region
      KPS_RAISE_ON_FAILURE = "true" # a failed run counts in failcount, so the alarm sees it
    },
    local.sweep ? { KPS_TARGETS = "all" } : length(var.projects) == 0 ? {
      KPS_PROJECT_ID            = var.project_id
      KPS_ALLOWED_PROJECT_IDS   = var.project_id
      } : {
      KPS_TARGETS             = join(",", local.targets)
      KPS_ALLOWED_PROJECT_IDS = join(",", [for p in local.projects : p.id])
    },
  )
  user_data = merge(local.module_settings, var.settings)
  # The projects the role is granted on, by name; null: all resources (a sweep).
  granted = local.sweep ? null : distinct([for p in local.projects : p.name])
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

  # Each project to clean, by its IAM project name (project_role takes names, not ids) ...
  dynamic "project_role" {
    for_each = local.sweep ? [] : local.granted
    content {
      project = project_role.value
      roles   = [huaweicloud_identity_role.kps_failed_tasks.name]
    }
  }
  # ... or, for a sweep, every project: the projects IAM lists are the ones the role applies to.
  all_resources_roles = local.sweep ? [huaweicloud_identity_role.kps_failed_tasks.name] : null

  lifecycle {
    precondition {
      # Whatever writes user_data: every project it cleans or allows is one the role is granted on, and no other.
      condition = local.sweep || (
        toset(split(",", lookup(local.user_data, "KPS_ALLOWED_PROJECT_IDS", ""))) == toset([for p in local.projects : p.id])
        && alltrue([for t in split(",", lookup(local.user_data, "KPS_TARGETS", "${var.region}:${var.project_id}")) : contains(local.targets, t)])
      )
      error_message = "Every project the function cleans or may be asked to clean (KPS_TARGETS, KPS_ALLOWED_PROJECT_IDS) must be one the agency's role is granted on."
    }
  }
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
  encrypted_user_data   = length(var.secret_settings) > 0 ? jsonencode(var.secret_settings) : null # none: the agency's

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
