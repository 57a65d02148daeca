output "function_urn" {
  description = "The function's URN (without its version)."
  value       = huaweicloud_fgs_function.this.urn
}

output "api_url" {
  description = "The HTTP API (GET: dry run; POST, DELETE: clean; IAM authentication), when http is set."
  value       = var.http == null ? null : "https://${var.http.domain}/${var.function_name}"
}

output "alarm_topic_urn" {
  description = "The SMN topic the failcount alarm notifies: subscribe more endpoints to it."
  value       = huaweicloud_smn_topic.alarms.topic_urn
}
