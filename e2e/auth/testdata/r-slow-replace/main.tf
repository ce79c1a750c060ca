# R-slow with a prior state: a change of v replaces the resource, so the
# creation-time provisioner sleeps again on every change (sleep seconds).
variable "v" {
  type    = string
  default = "one"
}

variable "sleep" {
  type    = number
  default = 10
}

resource "terraform_data" "r" {
  input            = var.v
  triggers_replace = var.v

  provisioner "local-exec" {
    command = "sleep ${var.sleep}"
  }
}

output "v" {
  value = terraform_data.r.output
}
