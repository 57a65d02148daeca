# Every name, default and limit here is checked against function/settings.py (SETTINGS), devtools/package.py and
# devtools/expose.py by tests/test_terraform.py: change one side and the suite says so.

variable "region" {
  description = "The region the function runs in and, by default, the region it cleans (KPS_REGION)."
  type        = string
  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z0-9]{1,20}){1,4}$", var.region))
    error_message = "region must be a region name such as cn-north-4."
  }
}

variable "project_id" {
  description = "The function's own project and, unless projects lists others, the one it cleans (KPS_PROJECT_ID) and the only one allowed."
  type        = string
  validation {
    condition     = can(regex("^[0-9a-f]{32}$", var.project_id))
    error_message = "project_id must be 32 lower-case hexadecimal characters."
  }
}

variable "project_name" {
  description = "project_id's IAM project name, which the agency's role is granted on: a region's default project is named after the region (the default), a sub-project <region>_<name>."
  type        = string
  default     = null
  validation {
    condition     = var.project_name == null || can(regex("^[a-z]{2}(-[a-z0-9]{1,20}){1,4}(_[A-Za-z0-9_-]{1,64})?$", var.project_name))
    error_message = "project_name must be an IAM project name: a region (cn-north-4) or <region>_<name> for a sub-project."
  }
  validation {
    condition     = var.project_name == null || split("_", coalesce(var.project_name, "_"))[0] == var.region
    error_message = "project_name must be a project of region: the region's name, or <region>_<name>."
  }
}

variable "projects" {
  description = "The projects every run cleans (KPS_TARGETS) and the only ones a request may name (KPS_ALLOWED_PROJECT_IDS), each granted the role by its IAM name; the region is the name's part before \"_\". Empty: project_id alone, in region."
  type = list(object({
    name = string # the IAM project name: cn-north-4, or cn-north-4_team for a sub-project
    id   = string
  }))
  default = []
  validation {
    condition = alltrue([
      for p in var.projects : can(regex("^[0-9a-f]{32}$", p.id)) && can(regex("^[a-z]{2}(-[a-z0-9]{1,20}){1,4}(_[A-Za-z0-9_-]{1,64})?$", p.name))
    ])
    error_message = "projects: each {name, id}: an IAM project name (cn-north-4, or cn-north-4_team) and 32 lower-case hexadecimal characters."
  }
  validation {
    condition     = length(var.projects) == length(distinct([for p in var.projects : p.id])) && length(var.projects) <= 50
    error_message = "projects: each project once, at most 50."
  }
}

variable "sweep" {
  description = "true: clean every project the agency can see (KPS_TARGETS=all) and grant its role on all resources. The only way to ask for a sweep."
  type        = bool
  default     = false
  validation {
    condition     = !(var.sweep && length(var.projects) > 0)
    error_message = "sweep cleans every project the agency can see: leave projects empty (KPS_REGIONS in settings limits the regions)."
  }
}

variable "function_name" {
  description = "The FunctionGraph function's name (app default)."
  type        = string
  default     = "kps-failed-task-cleaner"
  # 58 for the timer's 64 (<name>_timer). The HTTP APIs, <name>_get/_post/_delete (up to 65), are within a dedicated
  # gateway's API name limit, 3 to 255 (provider docs, resources/apig_api.md; the shared gateway's 64 does not apply).
  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9_-]{1,57}$", var.function_name))
    error_message = "function_name: 2 to 58 letters, digits, _ or -, starting with a letter (its timer, <name>_timer, may have 64)."
  }
}

variable "package_path" {
  description = "The zip `make package` builds. Default: dist/kps-failed-task-cleaner.zip at the repository's root."
  type        = string
  default     = null
}

variable "runtime" {
  description = "The Python runtime; `make package` builds the zip for the runtime template.yml declares, keep them equal."
  type        = string
  default     = "Python3.12"
  validation {
    condition     = contains(["Python3.9", "Python3.10", "Python3.12"], var.runtime)
    error_message = "runtime must be Python3.9, Python3.10 or Python3.12."
  }
}

variable "memory_size" {
  description = "Memory in MB."
  type        = number
  default     = 128
  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240
    error_message = "memory_size must be 128 to 10240 MB (the API checks the exact sizes it offers)."
  }
}

variable "timeout" {
  description = "Timeout in seconds: above the worst case of a count and a delete with the retry settings (2 x 43.5 s by default)."
  type        = number
  default     = 120
  validation {
    condition     = var.timeout >= 3 && var.timeout <= 900
    error_message = "timeout must be 3 to 900 seconds (a synchronous invocation's limit)."
  }
}

variable "settings" {
  description = "More of the function's settings (README, Settings), as environment variables: name = value, all strings."
  type        = map(string)
  default     = {}
  validation {
    condition     = alltrue([for name in keys(var.settings) : contains(concat(local.free_settings, local.module_setting_names, local.secret_names), name)])
    error_message = "settings: a name the function reads (a misspelled one would be ignored): ${join(", ", local.free_settings)}."
  }
  validation {
    condition     = length(setintersection(keys(var.settings), local.secret_names)) == 0
    error_message = "settings: credentials go in secret_settings."
  }
  validation {
    condition     = length(setintersection(keys(var.settings), local.module_setting_names)) == 0
    error_message = "settings: ${join(", ", local.module_setting_names)} are the module's, written with the role grants and the alarm that match them: use region, project_id, projects or sweep = true."
  }
  validation {
    # Before any jsondecode (select_long_number): the others decode "" for such a text, refused at once.
    condition     = !can(regex(local.select_long_number, lookup(var.settings, "KPS_SELECT", "")))
    error_message = "settings: KPS_SELECT holds a number with an exponent of more than 3 digits or more than 30 significant digits (docs/deploy.md)."
  }
  validation {
    # function/selection.py: JSON text of an object with at least one condition, of known keys only ("" is unset).
    condition = try(alltrue([
      for text in [
        for raw in [coalesce(lookup(var.settings, "KPS_SELECT", ""), local.select_unset)] :
        can(regex(local.select_long_number, raw)) ? "" : raw
      ] :
      length(keys(jsondecode(text))) > 0 && alltrue([for key in keys(jsondecode(text)) : contains(local.select_keys, key)])
    ]), false)
    error_message = "settings: KPS_SELECT must be JSON text of an object with at least one condition, keys among ${join(", ", local.select_keys)} (docs/selective-cleanup.md)."
  }
  validation {
    # function/selection.py from_object, _age, _values: older_than_hours a number (not "168", not true: the JSON
    # text tells the types apart) from 0 to select_max_age_hours (as a float rounds: select_min_age, _max_age);
    # every other key a list of 1 to select_max_values non-empty strings of at most select_max_value_length
    # characters, counted in the text (json_char), as the function decodes it: jsondecode's strings are NFC, where
    # U+0958 is two code points and e + U+0301 one; operate_type's among KPS's; no key given twice (json_key).
    condition = try(alltrue([
      for text in [
        for raw in [coalesce(lookup(var.settings, "KPS_SELECT", ""), local.select_unset)] :
        can(regex(local.select_long_number, raw)) ? "" : raw
        ] : alltrue([
          for key, value in jsondecode(text) : key == "older_than_hours"
          ? can(regex("^-?[0-9]", jsonencode(value))) && value >= local.select_min_age && value <= local.select_max_age
          : can(regex("^\\[", jsonencode(value))) && length(value) >= 1 && length(value) <= local.select_max_values && alltrue([
            for item in value : can(regex("^\"", jsonencode(item))) && length(regexall("(?s).", item)) >= 1
            && (key != "operate_type" || contains(local.select_operate_types, item))
          ])
      ]) && length(regexall(local.json_key, text)) == length(jsondecode(text))
      && alltrue([for quoted in regexall(local.json_string, text) : length(regexall(local.json_char, quoted)) <= local.select_max_value_length + 2])
    ]), false)
    error_message = "settings: KPS_SELECT's values: older_than_hours a number from 0 to ${local.select_max_age_hours}; ${join(", ", slice(local.select_keys, 1, length(local.select_keys)))} each a list of 1 to ${local.select_max_values} non-empty strings of at most ${local.select_max_value_length} characters, operate_type's among ${join(", ", local.select_operate_types)}; no key twice (docs/selective-cleanup.md)."
  }
}

variable "secret_settings" {
  description = "Credentials, only if the agency is not used: stored as encrypted environment variables (still in the state)."
  type        = map(string)
  default     = {}
  sensitive   = true
  validation {
    condition     = alltrue([for name in keys(var.secret_settings) : contains(local.secret_names, name)])
    error_message = "secret_settings takes ${join(", ", local.secret_names)} only."
  }
}

variable "log_ttl_days" {
  description = "How long LTS keeps the function's logs."
  type        = number
  default     = 30
  validation {
    condition     = var.log_ttl_days >= 1 && var.log_ttl_days <= 365
    error_message = "log_ttl_days must be 1 to 365."
  }
}

variable "schedule" {
  description = "The timer. Cron: six fields, seconds first (\"0 0 3 * * ?\": 03:00 daily in the region's time zone), optionally after CRON_TZ=<zone>, or @every 30m. Rate: 1m to 60m, 1h to 24h or 1d to 30d."
  type        = string
  default     = "0 0 3 * * ?"
  # A schedule change replaces the timer (delete, then create): one the API would refuse must fail the plan,
  # before the working timer is deleted. Huawei: functiongraph_01_0908 (cron), functiongraph_01_0207 (rate).
  validation {
    condition = (var.schedule_type == "Rate"
      ? can(regex("^(([1-9]|[1-5][0-9]|60)m|([1-9]|1[0-9]|2[0-4])h|([1-9]|[12][0-9]|30)d)$", var.schedule))
    : can(regex(local.cron, var.schedule)))
    error_message = "schedule: for Cron, six fields with seconds first (\"0 0 3 * * ?\"): seconds and minutes 0-59, hours 0-23, day 1-31, ?, L or W, month 1-12 or JAN-DEC, weekday 1-7, SUN-SAT or ?, each with , - / *; optionally after CRON_TZ=<zone>, or \"@every 30m\"; for Rate, 1m to 60m, 1h to 24h or 1d to 30d."
  }
}

variable "schedule_type" {
  description = "Cron or Rate."
  type        = string
  default     = "Cron"
  validation {
    condition     = contains(["Cron", "Rate"], var.schedule_type)
    error_message = "schedule_type must be Cron or Rate."
  }
}

variable "timer_user_event" {
  description = "The timer event's user_event: JSON text of a request object. {} means the settings' targets; {\"project_id\": ...} names them. Plain text is refused (docs/triggers.md)."
  type        = string
  default     = "{}"
  validation {
    condition     = can(keys(jsondecode(var.timer_user_event)))
    error_message = "timer_user_event must be JSON text of an object, such as {} or {\"dry_run\": true}."
  }
}

variable "timer_enabled" {
  description = "false: no timer (it is deleted; true creates it again). Not a DISABLED timer: a schedule change replaces the timer, and the provider's create may not send a status, so a disabled timer could come back ACTIVE."
  type        = bool
  default     = true
}

variable "http" {
  description = "null: no HTTP trigger. Otherwise a dedicated API Gateway: instance, API group, its domain, environment, backend timeout."
  type = object({
    instance_id = string
    group_id    = string
    domain      = string # the group's debugging domain or a bound domain, for the api_url output
    env_name    = optional(string, "RELEASE")
    env_id      = optional(string, "DEFAULT_ENVIRONMENT_RELEASE_ID") # RELEASE's id on every instance
    timeout_ms  = optional(number, 60000)
  })
  default = null
}

variable "alarm_email" {
  description = "An address the failcount alarm e-mails (it must confirm the subscription). Empty: the SMN topic only."
  type        = string
  default     = ""
  validation {
    condition     = var.alarm_email == "" || can(regex("^[^@\\s,;]+@[^@\\s,;.]+(\\.[^@\\s,;.]+)+$", var.alarm_email))
    error_message = "alarm_email: one e-mail address (name@example.com), or empty."
  }
}
