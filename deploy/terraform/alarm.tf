# A run that does not succeed raises (KPS_RAISE_ON_FAILURE=true), so it counts in FunctionGraph's failcount:
# one in five minutes raises the alarm, sent to the SMN topic (and by e-mail, once the address confirms).

resource "huaweicloud_smn_topic" "alarms" {
  name         = "${var.function_name}-alarms"
  display_name = "${var.function_name} alarms"
}

resource "huaweicloud_smn_subscription" "email" {
  count     = var.alarm_email == "" ? 0 : 1
  topic_urn = huaweicloud_smn_topic.alarms.topic_urn
  protocol  = "email"
  endpoint  = var.alarm_email
  remark    = "${var.function_name} failcount alarm"
}

resource "huaweicloud_ces_alarmrule" "failcount" {
  alarm_name        = "${var.function_name}-failcount"
  alarm_description = "${var.function_name}: an invocation failed (see its payload in LTS)"
  alarm_type        = "MULTI_INSTANCE"

  metric {
    namespace = "SYS.FunctionGraph"
  }
  resources {
    dimensions {
      name  = "package-functionname"
      value = "${huaweicloud_fgs_function.this.app}-${huaweicloud_fgs_function.this.name}"
    }
  }
  condition {
    metric_name         = "failcount"
    period              = 300
    filter              = "sum"
    comparison_operator = ">="
    value               = 1
    count               = 1
    suppress_duration   = 3600
    alarm_level         = 2
  }
  alarm_actions {
    type              = "notification"
    notification_list = [huaweicloud_smn_topic.alarms.topic_urn]
  }
}
