# What variables.tf's validations check against: the function's setting names and KPS_SELECT's keys (kept equal to
# function/settings.py and function/selection.py by tests/test_terraform.py) and the cron grammar.

locals {
  # The names var.settings may set: function/settings.py's SETTINGS less the module's own (module_settings in
  # main.tf), the credentials (secret_settings) and FunctionGraph's RUNTIME_*. A misspelled name (KPS_DRYRUN)
  # would be ignored by the function, so only these pass.
  free_settings = [
    "KPS_ENDPOINT", "KPS_REGIONS", "KPS_IAM_ENDPOINT", "KPS_CONCURRENCY", "KPS_DRY_RUN", "KPS_COUNT_BEFORE_DELETE",
    "KPS_RECORD_DELETED", "KPS_SELECT", "KPS_LIST_PAGE_SIZE", "KPS_MAX_ATTEMPTS", "KPS_TIMEOUT_SECONDS",
    "KPS_BACKOFF_BASE_SECONDS", "KPS_HTTP_BUDGET_SECONDS", "LOG_LEVEL", "LOG_SAMPLE_RATE", "LOG_EVENT", "SERVICE_NAME",
  ]
  # What main.tf's module_settings writes (KPS_RAISE_ON_FAILURE=true keeps failed runs in failcount, the alarm's).
  module_setting_names = ["KPS_REGION", "KPS_PROJECT_ID", "KPS_TARGETS", "KPS_ALLOWED_PROJECT_IDS", "KPS_RAISE_ON_FAILURE"]
  secret_names         = ["HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK", "HUAWEICLOUD_SDK_SECURITY_TOKEN", "KPS_AUTH_TOKEN"]
  # KPS_SELECT's keys and the bounds of their values (function/selection.py KEYS, OPERATE_TYPES, MAX_AGE_HOURS,
  # MAX_VALUES, MAX_VALUE_LENGTH).
  select_keys             = ["older_than_hours", "operate_type", "task_error_code", "server_id", "server_name", "keypair_name"]
  select_operate_types    = ["FAILED_RESET", "FAILED_REPLACE", "FAILED_UNBIND"]
  select_max_age_hours    = 1000000
  select_max_values       = 100
  select_max_value_length = 256

  # Cron (functiongraph_01_0908): each field a comma-separated list of *, a value or a range, each with an
  # optional /step; %[1]s is the field's value. CRON_TZ's zone has the shape of an IANA name: UTC, Etc/UTC,
  # Etc/GMT-14 to Etc/GMT+12, or Area/Location[/Sublocation] in one of the tz database's areas, each part
  # capitalised (Asia/Shanghai, America/Argentina/Buenos_Aires). Whether that zone exists is not checked:
  # Terraform has no zone list (and the function never reads the schedule: FunctionGraph does).
  cron_list   = "(\\*|%[1]s(-%[1]s)?)(/[0-9]{1,2})?(,(\\*|%[1]s(-%[1]s)?)(/[0-9]{1,2})?)*"
  cron_second = format(local.cron_list, "[0-5]?[0-9]") # also minutes
  cron_hour   = format(local.cron_list, "([01]?[0-9]|2[0-3])")
  cron_dom    = "(0?[1-9]|[12][0-9]|3[01])"
  cron_day    = "(\\?|L|LW|${local.cron_dom}W|${format(local.cron_list, local.cron_dom)})"
  cron_month  = format(local.cron_list, "(0?[1-9]|1[0-2]|(?i:JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC))")
  cron_week   = "(\\?|${format(local.cron_list, "([1-7]|(?i:SUN|MON|TUE|WED|THU|FRI|SAT))")})"
  cron_fields = join(" ", [local.cron_second, local.cron_second, local.cron_hour, local.cron_day, local.cron_month, local.cron_week])
  cron_every  = "@every ([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+"
  cron_area   = "(Africa|America|Antarctica|Arctic|Asia|Atlantic|Australia|Europe|Indian|Pacific)"
  cron_place  = "[A-Z][A-Za-z_-]*"
  cron_zone   = "(UTC|Etc/UTC|Etc/GMT([+-]([0-9]|1[0-2])|-1[34])?|${local.cron_area}/${local.cron_place}(/${local.cron_place})?)"
  cron        = "^((CRON_TZ=${local.cron_zone} )?${local.cron_fields}|${local.cron_every})$"
}
