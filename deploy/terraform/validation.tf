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
  # What variables.tf checks for a KPS_SELECT that is unset or "" (the function reads both as no selection).
  select_unset = "{\"older_than_hours\": 0}"
  # The function reads a JSON number with a fraction or an exponent as a float64, Terraform exactly: the bounds are
  # those of the numbers that round into 0 to select_max_age_hours (ties to even), so that both take
  # 1000000.0000000000000000001 (1000000.0) and -1e-400 (-0.0): half the least subnormal below 0, half an ulp
  # (2^-33 from 2^19 to 2^20) above the top.
  select_min_age = -pow(2, -1074) / 2
  select_max_age = local.select_max_age_hours + pow(2, -34)
  # A JSON object's keys, found in its text: each string followed by a colon (a string in a value is followed by
  # a comma, ] or }). More keys in the text than in jsondecode's object: one given twice, however it is spelled
  # ("older_than_hour\u0073" too); jsondecode keeps the last, the function refuses it.
  json_string = "\"(?:[^\"\\\\]|\\\\.)*\""
  json_key    = "${local.json_string}\\s*:"
  # One code point of a JSON string's text as Python's json decodes it: an escape (a surrogate pair's two one), else
  # one character (RE2's "." is a code point; length() would count grapheme clusters: 200 flags are 400 to Python).
  json_char = "(?s)\\\\u[dD][89abAB][0-9a-fA-F]{2}\\\\u[dD][c-fC-F][0-9a-fA-F]{2}|\\\\u[0-9a-fA-F]{4}|\\\\.|."
  # A number outside the strings with an exponent of more than 3 digits or more than 30 significant digits: no
  # age needs one, and jsondecode reads a number into an arbitrary-precision float in time that grows with its
  # exponent (1e-999999: over a minute). Found in the text first (RE2 runs in linear time); a KPS_SELECT holding
  # one is never decoded (select_text), so the plan cannot spin on it.
  select_long_number = "^(?:[^\"]|${local.json_string})*(?:[0-9][eE][+-]?[0-9]{4}|[1-9](?:\\.?[0-9]){30})"

  # Cron (functiongraph_01_0908): each field a comma-separated list of *, a value or a range, each with an
  # optional /step; %[1]s is the field's value. CRON_TZ's zone is a tz database name: one of its top-level names
  # (UTC, PRC, CET, EST5EDT; the list is the tz database's and does not grow), an Etc/ name (Etc/UTC, Etc/GMT-14
  # to Etc/GMT+12), or Area/Location[/Sublocation] in one of its areas, each part capitalised (Asia/Shanghai,
  # US/Eastern, America/Argentina/Buenos_Aires). Whether an Area/Location exists is not checked: Terraform has no
  # zone list (and the function never reads the schedule: FunctionGraph does). tests/test_terraform.py checks that
  # every name in Python's zoneinfo.available_timezones() is taken.
  cron_list   = "(\\*|%[1]s(-%[1]s)?)(/[0-9]{1,2})?(,(\\*|%[1]s(-%[1]s)?)(/[0-9]{1,2})?)*"
  cron_second = format(local.cron_list, "[0-5]?[0-9]") # also minutes
  cron_hour   = format(local.cron_list, "([01]?[0-9]|2[0-3])")
  cron_dom    = "(0?[1-9]|[12][0-9]|3[01])"
  cron_day    = "(\\?|L|LW|${local.cron_dom}W|${format(local.cron_list, local.cron_dom)})"
  cron_month  = format(local.cron_list, "(0?[1-9]|1[0-2]|(?i:JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC))")
  cron_week   = "(\\?|${format(local.cron_list, "([1-7]|(?i:SUN|MON|TUE|WED|THU|FRI|SAT))")})"
  cron_fields = join(" ", [local.cron_second, local.cron_second, local.cron_hour, local.cron_day, local.cron_month, local.cron_week])
  cron_every  = "@every ([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+"
  cron_top = join("|", [
    "CET", "CST6CDT", "Cuba", "EET", "EST", "EST5EDT", "Egypt", "Eire", "Factory", "GB", "GB-Eire", "GMT", "GMT[+-]?0",
    "Greenwich", "HST", "Hongkong", "Iceland", "Iran", "Israel", "Jamaica", "Japan", "Kwajalein", "Libya", "MET", "MST",
    "MST7MDT", "NZ", "NZ-CHAT", "Navajo", "PRC", "PST8PDT", "Poland", "Portugal", "ROC", "ROK", "Singapore", "Turkey",
    "UCT", "UTC", "Universal", "W-SU", "WET", "Zulu",
  ])
  cron_etc   = "Etc/(GMT([+-]([0-9]|1[0-2])|-1[34]|0)?|Greenwich|UCT|UTC|Universal|Zulu)"
  cron_area  = "(Africa|America|Antarctica|Arctic|Asia|Atlantic|Australia|Brazil|Canada|Chile|Europe|Indian|Mexico|Pacific|US)"
  cron_place = "[A-Z][A-Za-z_-]*"
  cron_zone  = "(${local.cron_top}|${local.cron_etc}|${local.cron_area}/${local.cron_place}(/${local.cron_place})?)"
  cron       = "^((CRON_TZ=${local.cron_zone} )?${local.cron_fields}|${local.cron_every})$"
}
