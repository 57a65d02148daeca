terraform {
  required_version = ">= 1.9" # terraform_data (1.4); validations that read other variables (1.9)
  required_providers {
    huaweicloud = {
      source  = "huaweicloud/huaweicloud"
      version = "~> 1.97" # checked against the provider's schema at v1.97.1 (tests/terraform_schema.json)
    }
  }
}

# Credentials from the environment: HW_ACCESS_KEY, HW_SECRET_KEY (and HW_SECURITY_TOKEN for temporary keys).
provider "huaweicloud" {
  region = var.region
}
