# FunctionGraph's UpdateTrigger changes a trigger's status and a few polling fields only: a changed schedule or
# API setting sent as an in-place update would be dropped, or show as a diff forever. So each trigger's event data
# is also held by a terraform_data: when it changes, the trigger is replaced (deleted, then created with the new
# event data), and the event data the API reads back (with fields of its own) is never diffed.

locals {
  timer_event_data = {
    name          = "${replace(var.function_name, "-", "_")}_timer" # letters, digits, _; at most 64 (variables.tf)
    schedule_type = var.schedule_type
    schedule      = var.schedule
    user_event    = var.timer_user_event
  }

  # The dedicated-gateway trigger's fixed fields, shared with devtools/expose.py (make expose).
  http           = jsondecode(file("${path.module}/http-trigger.json"))
  http_methods   = var.http == null ? [] : local.http.methods
  http_budget_ms = 1000 * min(tonumber(lookup(local.user_data, "KPS_HTTP_BUDGET_SECONDS", local.default_http_budget_seconds)), var.timeout)
  http_event_data = var.http == null ? {} : {
    for method in local.http_methods : method => {
      instance_id = var.http.instance_id
      group_id    = var.http.group_id
      env_id      = var.http.env_id
      env_name    = var.http.env_name
      name        = "${replace(var.function_name, "-", "_")}_${lower(method)}"
      type        = local.http.type
      path        = "/${var.function_name}"
      protocol    = local.http.protocol
      req_method  = method
      match_mode  = local.http.match_mode
      auth        = local.http.auth
      func_info = {
        timeout         = var.http.timeout_ms
        invocation_type = local.http.invocation_type
      }
    }
  }
}

resource "terraform_data" "timer_event_data" {
  input = local.timer_event_data
}

# No DISABLED timer: a schedule change replaces the timer, and a create that does not send the status would bring
# a disabled one back ACTIVE. timer_enabled = false deletes it instead; true creates it again (docs/deploy.md).
resource "huaweicloud_fgs_function_trigger" "timer" {
  count        = var.timer_enabled ? 1 : 0
  function_urn = huaweicloud_fgs_function.this.urn
  type         = "TIMER"
  status       = "ACTIVE"
  event_data   = jsonencode(local.timer_event_data)

  lifecycle {
    replace_triggered_by = [terraform_data.timer_event_data]
    ignore_changes       = [event_data]
  }
}

resource "terraform_data" "http_event_data" {
  for_each = local.http_event_data
  input    = each.value
}

# One API per method the function serves (an API has one req_method), as make expose makes them.
resource "huaweicloud_fgs_function_trigger" "http" {
  for_each     = local.http_event_data
  function_urn = huaweicloud_fgs_function.this.urn
  type         = "DEDICATEDGATEWAY"
  event_data   = jsonencode(each.value)

  lifecycle {
    replace_triggered_by = [terraform_data.http_event_data[each.key]]
    ignore_changes       = [event_data]
    precondition {
      condition     = var.http.timeout_ms <= local.http.max_backend_timeout_ms
      error_message = "http.timeout_ms: API Gateway's backend timeout is at most 60000 ms."
    }
    precondition {
      condition     = var.http.timeout_ms >= local.http_budget_ms + local.http.payload_margin_ms
      error_message = "http.timeout_ms must be at least the function's HTTP budget (the smaller of KPS_HTTP_BUDGET_SECONDS and timeout) plus 2000 ms for the payload to reach the gateway, or the gateway's own 504 answers first."
    }
  }
}
